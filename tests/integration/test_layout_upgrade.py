"""Upgrading a server from LWR's old layout (``<staging>/_default_/<id>``) to Pulsar's.

The old layout is made by the current code with the default manager's ``staging_directory`` set
to ``files/staging/_default_`` — exactly where LWR used to put those jobs, with the job scripts
naming those absolute paths. Dropping the option and restarting is then the upgrade: a finished
job must still serve its status and outputs, and a job that was running through the restart must
finish and be collected at the new place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.test_job_lifecycle import FINAL, start_job, wait_status

pytestmark = pytest.mark.integration

OLD_LAYOUT = "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 2\n"


def test_old_layout_jobs_move_up_and_are_still_served(
    lwr_server_factory: ServerFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = lwr_server_factory(
        managers_ini=OLD_LAYOUT + "staging_directory = files/staging/_default_\n"
    )
    staging = server.directory / "files" / "staging"
    done_client, _ = start_job(server, "41", "echo finished before the upgrade > ../outputs/o.txt")
    assert wait_status(done_client, FINAL)["status"] == "complete"
    gate = tmp_path / "gate"
    request.addfinalizer(gate.touch)  # a failing run must not leave job 42 polling for ever
    running_client, config = start_job(
        server,
        "42",
        f"while [ ! -e {gate} ]; do sleep 0.1; done; echo finished after it > ../outputs/o.txt",
    )
    wait_status(running_client, {"running"})
    assert config["job_directory"] == str(staging / "_default_" / "42")
    assert (staging / "_default_" / "41" / "outputs" / "o.txt").exists()
    server.stop()  # the running job runs on in its own session

    (server.directory / "job_managers.ini").write_text(OLD_LAYOUT)  # the new default: Pulsar's
    server.start()
    log = server.log()
    assert f"moved job directory {staging / '_default_' / '41'} to {staging / '41'}" in log
    assert (staging / "41" / "outputs" / "o.txt").read_text() == "finished before the upgrade\n"
    assert (staging / "_default_" / "42").is_symlink()  # the running job's script writes there

    status = done_client.raw_check_complete()
    assert status["status"] == "complete"
    assert status["outputs_directory_contents"] == ["o.txt"]
    downloaded = tmp_path / "o41.txt"
    done_client.fetch_output(str(downloaded), "o.txt", str(tmp_path), "transfer", "output")
    assert downloaded.read_text() == "finished before the upgrade\n"

    gate.touch()
    assert wait_status(running_client, FINAL)["status"] == "complete"
    assert (staging / "42" / "outputs" / "o.txt").read_text() == "finished after it\n"
    server.restart()  # 42 is final now: its link and the old directory go
    assert not (staging / "_default_").exists()
    assert running_client.raw_check_complete()["outputs_directory_contents"] == ["o.txt"]
    # the move happened once: a second start found nothing left to move
    assert server.log().count("moved job directory") == 2
