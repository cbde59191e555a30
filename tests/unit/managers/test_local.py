"""The local backends on their own: options, launch, poll, cancel, wake-up on exit."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers import launcher, script
from lwr.managers.base import ActiveJob, JobState, LaunchSpec
from lwr.managers.directory import JobDirectory
from lwr.managers.local import QueuedPythonManager, UnqueuedManager


def make_spec(tmp_path: Path, job_id: str, command_line: str) -> LaunchSpec:
    directory = JobDirectory(tmp_path / job_id)
    directory.create()
    path = script.write(directory, script.render(directory, job_id, 1, command_line))
    launcher.write_spec(directory, job_id, 1, command_line)
    return LaunchSpec("local", job_id, 1, directory.root, directory.sub("working"), path)


@pytest.fixture(params=["bash", "python"])
def manager(request: pytest.FixtureRequest) -> Iterator[QueuedPythonManager]:
    """A local backend with each launcher: every test using it runs for bash and for Python."""
    backend = QueuedPythonManager(
        "local",
        {"max_concurrent_jobs": "2", "min_polling_interval": "0.05", "launcher": request.param},
    )
    assert backend.launcher.name == request.param
    launched: list[str] = []
    original = backend.launch

    def tracking_launch(spec: LaunchSpec) -> str:
        external_id = original(spec)
        launched.append(external_id)
        return external_id

    backend.launch = tracking_launch  # type: ignore[method-assign]
    yield backend
    for external_id in launched:
        backend.cancel(ActiveJob(make_dummy_spec(), external_id))


def make_dummy_spec() -> LaunchSpec:
    return LaunchSpec(
        "local", "x", 1, Path("/nonexistent"), Path("/nonexistent"), Path("/nonexistent")
    )


def test_options() -> None:
    backend = QueuedPythonManager("q", {"max_concurrent_jobs": "3", "min_polling_interval": "0.5"})
    assert backend.max_concurrent_jobs == 3
    assert backend.poll_interval == 0.5
    assert QueuedPythonManager("q", {}).max_concurrent_jobs == 1
    assert QueuedPythonManager("q", {"num_concurrent_jobs": "4"}).max_concurrent_jobs == 4
    assert QueuedPythonManager("q", {"max_concurrent_jobs": "*"}).max_concurrent_jobs == max(
        1, os.cpu_count() or 1
    )
    assert UnqueuedManager("u", {}).max_concurrent_jobs is None


def test_both_concurrency_spellings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        QueuedPythonManager("q", {"max_concurrent_jobs": "1", "num_concurrent_jobs": "2"})


@pytest.mark.parametrize(
    "options",
    [{"max_concurrent_jobs": "0"}, {"min_polling_interval": "-1"}, {"min_polling_interval": "x"}],
)
def test_bad_option_values(options: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        QueuedPythonManager("q", options)


def test_check_options_names_the_unknown_key() -> None:
    QueuedPythonManager.check_options(
        "q", {"max_concurrent_jobs": "1", "staging_directory": "x", "min_polling_interval": "1"}
    )
    with pytest.raises(ConfigurationError) as caught:
        QueuedPythonManager.check_options("q", {"max_concurent_jobs": "1"})
    assert "max_concurent_jobs" in caught.value.message
    assert "max_concurrent_jobs" in caught.value.message
    with pytest.raises(ConfigurationError, match="max_concurrent_jobs"):
        UnqueuedManager.check_options("u", {"max_concurrent_jobs": "1"})


def test_launch_runs_the_script_and_poll_sees_it_finish(
    tmp_path: Path, manager: QueuedPythonManager
) -> None:
    gate = tmp_path / "gate"
    spec = make_spec(tmp_path, "1", f"while [ ! -e {gate} ]; do sleep 0.02; done; echo done")
    external_id = manager.launch(spec)
    job = ActiveJob(spec, external_id)
    assert set(manager.poll([job])) == {external_id}  # keyed by external id
    assert manager.poll([job])[external_id].state is JobState.RUNNING
    gate.touch()
    deadline = time.monotonic() + 10
    while manager.poll([job])[external_id].state is JobState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert manager.poll([job])[external_id].state is JobState.COMPLETE
    assert (spec.job_directory / "stdout").read_text() == "done\n"
    assert JobDirectory(spec.job_directory).return_code() == 0


def test_the_waiter_wakes_the_monitor_when_a_job_ends(
    tmp_path: Path, manager: QueuedPythonManager
) -> None:
    woken = threading.Event()
    manager.bind(woken.set)
    manager.launch(make_spec(tmp_path, "1", "true"))
    assert woken.wait(10)


def test_a_process_started_by_another_server_is_polled_by_pid(
    tmp_path: Path, manager: QueuedPythonManager
) -> None:
    """After a restart the new backend has no Popen: it must recognise the job by its identity."""
    gate = tmp_path / "gate"
    spec = make_spec(tmp_path, "1", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    external_id = manager.launch(spec)
    fresh = QueuedPythonManager("local", {})
    job = ActiveJob(spec, external_id)
    assert fresh.poll([job])[external_id].state is JobState.RUNNING
    gate.touch()
    deadline = time.monotonic() + 10
    while fresh.poll([job])[external_id].state is JobState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_poll_of_an_unknown_dead_process_is_complete(tmp_path: Path) -> None:
    backend = UnqueuedManager("u", {})
    job = ActiveJob(make_dummy_spec(), f"{2**22 + 99}:0.00")
    assert backend.poll([job])[job.external_id].state is JobState.COMPLETE


def test_cancel_kills_the_job_tree(
    tmp_path: Path, manager: QueuedPythonManager, wait_for: Callable[..., object]
) -> None:
    pid_file = tmp_path / "sleep.pid"
    spec = make_spec(tmp_path, "1", f"sleep 300 & echo $! > {pid_file}; wait")
    external_id = manager.launch(spec)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job to start")
    grandchild = int(pid_file.read_text())
    manager.cancel(ActiveJob(spec, external_id))
    assert manager.poll([ActiveJob(spec, external_id)])[external_id].state is JobState.COMPLETE

    def grandchild_gone() -> bool:
        try:
            return psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(grandchild_gone, what="the grandchild sleep to die")
    assert JobDirectory(spec.job_directory).return_code() is None


def test_cancel_of_a_finished_job_does_not_raise(
    tmp_path: Path, manager: QueuedPythonManager, wait_for: Callable[..., object]
) -> None:
    spec = make_spec(tmp_path, "1", "true")
    external_id = manager.launch(spec)
    job = ActiveJob(spec, external_id)
    wait_for(lambda: manager.poll([job])[external_id].state is JobState.COMPLETE)
    manager.cancel(job)


def test_launch_failure_is_a_submit_error(tmp_path: Path) -> None:
    backend = UnqueuedManager("u", {})
    spec = LaunchSpec(
        "u",
        "1",
        1,
        tmp_path / "missing",
        tmp_path / "missing" / "working",
        tmp_path / "missing" / "job.sh",
    )
    with pytest.raises(SubmitError, match="cannot start job 1"):
        backend.launch(spec)


def test_the_launchers_own_streams_are_kept(
    tmp_path: Path, manager: QueuedPythonManager, wait_for: Callable[..., object]
) -> None:
    """What bash or the python launcher itself says (not the command) lands in job_std*."""
    spec = make_spec(tmp_path, "1", "true")
    if manager.launcher.name == "bash":
        spec.script.write_text("echo from-the-script-itself; echo script-err >&2\n")
    else:
        (spec.job_directory / "job.json").write_text("{not json")
    external_id = manager.launch(spec)
    wait_for(
        lambda: manager.poll([ActiveJob(spec, external_id)])[external_id].state is JobState.COMPLETE
    )
    if manager.launcher.name == "bash":
        assert (spec.job_directory / "job_stdout").read_text() == "from-the-script-itself\n"
        assert (spec.job_directory / "job_stderr").read_text() == "script-err\n"
    else:
        stderr = (spec.job_directory / "job_stderr").read_text()
        assert "cannot read the job description" in stderr
        assert JobDirectory(spec.job_directory).return_code() == 127
