"""CondorManager's launch, poll and cancel paths against FAKE condor_submit/condor_rm scripts.

HTCondor cannot run on our build machines, so tests/data/condor/fake_bin holds shell scripts that
answer like condor_submit/condor_rm and write the user log the way HTCondor documents it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from lwr.errors import ConfigurationError, InvalidRequestError, SubmitError
from lwr.managers.base import ActiveJob, JobState, LaunchSpec
from lwr.managers.condor import CondorManager

FAKE_BIN = Path(__file__).resolve().parents[2] / "data" / "condor" / "fake_bin"

SCRIPT = """#!/bin/bash
cd {work} || exit 1
( {command} ) > {job}/stdout 2> {job}/stderr
rc=$?
echo "$rc" > {job}/return_code.tmp && mv {job}/return_code.tmp {job}/return_code
"""


@pytest.fixture
def fake_condor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the fake HTCondor commands first on PATH with a private state directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("condor_submit", "condor_rm"):
        shutil.copy(FAKE_BIN / name, bin_dir / name)
        (bin_dir / name).chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CONDOR_STATE", str(state))
    return state


def make(tmp_path: Path, name: str, command: str, **params: str) -> LaunchSpec:
    job_dir = tmp_path / "jobs" / name
    work = job_dir / "working"
    work.mkdir(parents=True)
    script = job_dir / "command.sh"
    script.write_text(SCRIPT.format(work=work, job=job_dir, command=command))
    script.chmod(0o755)
    return LaunchSpec("condor", name, 1, job_dir, work, script, submit_params=params)


def wait_final(manager: CondorManager, job: ActiveJob, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        status = manager.poll([job])[job.external_id]
        if status.state.is_final or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_submit_description_from_options_and_client(tmp_path: Path) -> None:
    manager = CondorManager(
        "condor",
        {
            "submit_request_memory": "2 GB",
            "submit_requirements": 'OpSys == "LINUX"',
            "submit_rank": "Memory",
        },
    )
    spec = make(
        tmp_path, "a", "true", submit_request_memory="4 GB", submit_native_specification="-q x"
    )
    text = manager.submit_description(spec)
    assert "universe = vanilla\n" in text
    assert "request_memory = 4 GB\n" in text
    assert 'requirements = OpSys == "LINUX"\n' in text and "rank = Memory\n" in text
    assert f"executable = {spec.script}\n" in text
    assert f"log = {spec.job_directory / 'condor.log'}\n" in text
    assert "batch_name = lwr-condor-a-1\n" in text and text.endswith("queue 1\n")
    assert "native_specification" not in text


def test_reserved_or_multiline_submit_commands_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="executable"):
        CondorManager("c", {"submit_executable": "/bin/evil"})
    manager = CondorManager("c", {})
    with pytest.raises(InvalidRequestError, match="one line"):
        manager.submit_description(make(tmp_path, "b", "true", submit_rank="1\nqueue 5"))


def test_launch_poll_complete_and_nonzero(tmp_path: Path, fake_condor: Path) -> None:
    manager = CondorManager("condor", {"submit_universe": "vanilla"})
    ok, bad = make(tmp_path, "ok", "echo hi"), make(tmp_path, "bad", "exit 3")
    jobs = [ActiveJob(spec, manager.launch(spec)) for spec in (ok, bad)]
    assert [job.external_id for job in jobs] == ["101", "102"]
    assert manager.find_orphan(ok) == "101"
    first = wait_final(manager, jobs[0])
    assert (first.state, first.native_state) == (
        JobState.COMPLETE,
        "job_terminated (return value 0)",
    )
    assert (ok.job_directory / "stdout").read_text() == "hi\n"
    assert wait_final(manager, jobs[1]).state is JobState.COMPLETE
    assert (bad.job_directory / "return_code").read_text().strip() == "3"


def test_cancel_running_job(tmp_path: Path, fake_condor: Path) -> None:
    manager = CondorManager("condor", {})
    spec = make(tmp_path, "sleeper", "sleep 30")
    job = ActiveJob(spec, manager.launch(spec))
    deadline = time.monotonic() + 10
    while manager.poll([job])[job.external_id].state is not JobState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    manager.cancel(job)
    status = wait_final(manager, job)
    assert (status.state, status.native_state) == (JobState.FAILED, "job_aborted")
    manager.cancel(job)  # already gone: no error


def test_submit_failure_keeps_condors_complaint(
    tmp_path: Path, fake_condor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CONDOR_FAIL", "1")
    manager = CondorManager("condor", {})
    manager.retry_delay = 0.01
    with pytest.raises(SubmitError) as info:
        manager.launch(make(tmp_path, "x", "true"))
    assert info.value.returncode == 1 and "queue manager" in info.value.stderr


def test_missing_log_is_queued_at_first_then_judged_by_return_code(tmp_path: Path) -> None:
    manager = CondorManager("condor", {})
    spec = make(tmp_path, "nolog", "true")
    (spec.job_directory / "condor.submit").write_text("queue 1\n")
    assert manager.poll([ActiveJob(spec, "5")])["5"].state is JobState.QUEUED
    (spec.job_directory / "return_code").write_text("0\n")
    assert manager.poll([ActiveJob(spec, "5")])["5"].state is JobState.COMPLETE
