"""Job life cycle through Galaxy's client: cancel, restart (even ``kill -9``), retries, resubmits.

The server is a real ``paster serve`` process; jobs are real process groups. "Nothing lost, nothing
run twice" is checked through files each job appends to, so a second run would show.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.conftest import ServerFactory, local_managers
from tests.integration.server import LwrServer

pytestmark = pytest.mark.integration

FINAL = {"complete", "failed", "cancelled", "lost"}


def client_for(server: LwrServer, job_id: str, url: str | None = None) -> Any:
    from pulsar.client.manager import build_client_manager

    return build_client_manager().get_client({"url": url or server.url}, job_id)


def wait_status(client: Any, wanted: set[str], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.raw_check_complete()
        if status["status"] in wanted:
            return status
        time.sleep(0.1)
    raise AssertionError(f"status never reached {wanted}: last {status}")


def start_job(server: LwrServer, job_id: str, command: str) -> tuple[Any, dict[str, Any]]:
    client = client_for(server, job_id)
    config = client.setup("lifecycle_tool", "1.0")
    client.launch(command)
    return client, config


def marker_command(marker: Path, seconds: float, code: int = 0) -> str:
    """A command that appends one line to ``marker`` when it starts, sleeps, and exits ``code``."""
    return f"echo started >> {marker}; sleep {seconds}; echo done >> {marker}; exit {code}"


def job_processes(working_directory: str) -> list[psutil.Process]:
    """Live processes running in the job's working directory (the script and its children)."""
    found = []
    for proc in psutil.process_iter(["cwd", "status"]):
        try:
            if (
                proc.info["cwd"] == working_directory
                and proc.info["status"] != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("launcher", ["bash", "python"])
def test_cancel_running_job_kills_its_process_group(
    lwr_server_factory: ServerFactory, tmp_path: Path, launcher: str
) -> None:
    """With either launcher (python: what a server without bash uses) cancel kills the lot."""
    lwr_server = lwr_server_factory(managers_ini=local_managers(launcher))
    marker = tmp_path / "running.marker"
    client, config = start_job(lwr_server, "cancel-running", marker_command(marker, 60) + " & wait")
    wait_status(client, {"running"})
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job_processes(config["working_directory"]), "the job's processes should be running"
    client.kill()
    status = wait_status(client, FINAL)
    assert status["status"] == "cancelled"
    time.sleep(0.5)
    assert not job_processes(config["working_directory"])
    assert "done" not in marker.read_text()


def test_cancel_queued_job_never_runs(lwr_server: LwrServer, tmp_path: Path) -> None:
    blocker_marker, queued_marker = tmp_path / "blocker", tmp_path / "queued"
    blocker, _ = start_job(lwr_server, "blocker", marker_command(blocker_marker, 3))
    wait_status(blocker, {"running"})
    queued, _ = start_job(lwr_server, "queued", marker_command(queued_marker, 0))
    assert queued.raw_check_complete()["status"] == "queued"  # one slot, taken by the blocker
    queued.kill()
    assert wait_status(queued, FINAL)["status"] == "cancelled"
    assert wait_status(blocker, FINAL)["status"] == "complete"
    time.sleep(0.5)
    assert not queued_marker.exists()


@pytest.mark.parametrize("launcher", ["bash", "python"])
def test_kill9_and_restart_while_job_runs_loses_nothing(
    lwr_server_factory: ServerFactory, tmp_path: Path, launcher: str
) -> None:
    server = lwr_server_factory(managers_ini=local_managers(launcher))
    marker, queued_marker = tmp_path / "runs", tmp_path / "queued-runs"
    running, _ = start_job(server, "survivor", marker_command(marker, 3, code=7))
    wait_status(running, {"running"})
    queued, _ = start_job(server, "waiting", marker_command(queued_marker, 0, code=0))
    assert queued.raw_check_complete()["status"] == "queued"
    server.kill9()
    time.sleep(0.5)
    server.start()
    status = wait_status(running, FINAL, timeout=30)
    assert status["status"] == "complete", status
    assert status["returncode"] == 7
    assert wait_status(queued, FINAL, timeout=30)["status"] == "complete"
    assert marker.read_text().splitlines() == ["started", "done"]  # ran exactly once
    assert queued_marker.read_text().splitlines() == ["started", "done"]


def test_job_whose_process_died_while_server_was_down_is_lost(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory()
    marker = tmp_path / "doomed"
    client, config = start_job(server, "doomed", marker_command(marker, 60))
    wait_status(client, {"running"})
    server.kill9()
    processes = job_processes(config["working_directory"])
    assert processes, "the job must outlive the server"
    for proc in processes:
        proc.kill()
    server.start()
    status = wait_status(client, FINAL)
    assert status["status"] == "lost"
    assert "return code" in status["stderr"]


def test_duplicate_submit_and_setup_while_running_change_nothing(
    lwr_server: LwrServer, tmp_path: Path
) -> None:
    marker = tmp_path / "once"
    client, config = start_job(lwr_server, "twice", marker_command(marker, 1))
    wait_status(client, {"running"})
    again = client.setup("lifecycle_tool", "1.0")
    assert again["working_directory"] == config["working_directory"]
    client.launch(marker_command(marker, 1))
    status = wait_status(client, FINAL)
    assert status["status"] == "complete"
    time.sleep(0.5)
    assert marker.read_text().splitlines() == ["started", "done"]


def test_setup_after_finish_starts_a_fresh_attempt(lwr_server: LwrServer, tmp_path: Path) -> None:
    client, config = start_job(lwr_server, "resubmitted", "echo first > out.txt; exit 1")
    status = wait_status(client, FINAL)
    assert (status["status"], status["returncode"]) == ("complete", 1)
    assert "out.txt" in status["working_directory_contents"]
    client.setup("lifecycle_tool", "1.0")
    assert not os.path.exists(os.path.join(config["working_directory"], "out.txt"))
    client.launch("echo second > out2.txt")
    status = wait_status(client, FINAL)
    assert (status["status"], status["returncode"]) == ("complete", 0)
    assert status["working_directory_contents"] == ["out2.txt"]
    assert status["attempt"] == 2


def test_assign_ids_uuid(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory(app_options={"assign_ids": "uuid"})
    client = client_for(server, "galaxy-5")
    config = client.setup("t", "1")
    assert config["job_id"] != "galaxy-5" and len(config["job_id"]) == 32
    remote = client_for(server, config["job_id"])
    remote.launch("echo hi")
    assert wait_status(remote, FINAL)["stdout"].strip() == "hi"


def test_status_stream_is_bounded(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory(app_options={"maximum_stream_size": "1000"})
    client, _ = start_job(server, "chatty", "python3 -c \"print('x' * 100000)\"")
    status = wait_status(client, FINAL)
    assert len(status["stdout"]) == 1000


def test_job_directory_token_in_the_command_line(lwr_server: LwrServer, tmp_path: Path) -> None:
    """Galaxy's client writes ``__PULSAR_JOB_DIRECTORY__`` where it cannot know the remote job
    directory; the server substitutes it, and refuses the retired jobs-directory token."""
    command = "echo __PULSAR_JOB_DIRECTORY__ > __PULSAR_JOB_DIRECTORY__/outputs/where.txt"
    client, config = start_job(lwr_server, "token", command)
    status = wait_status(client, FINAL)
    assert (status["status"], status["returncode"]) == ("complete", 0), status
    where = tmp_path / "where.txt"
    client.fetch_output(str(where), "where.txt", None, "transfer", "output")
    assert where.read_text().strip() == os.path.abspath(config["job_directory"])

    client = client_for(lwr_server, "retired")
    client.setup("lifecycle_tool", "1.0")
    with pytest.raises(Exception, match="transport code: 400"):  # the client hides the body
        client.launch("ls __PULSAR_JOBS_DIRECTORY__")
