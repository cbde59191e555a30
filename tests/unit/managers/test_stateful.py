"""StatefulManager over real local backends (and two small fakes): the whole job life cycle.

Jobs here are real bash processes in ``tmp_path``. Where a test needs a job to stay running, its
command waits for a *gate* file the test creates, so nothing depends on sleeps being long enough.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from lwr.errors import InvalidJobStateError, InvalidRequestError, SubmitError, UnknownJobError
from lwr.managers import process
from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec, Manager
from lwr.managers.local import QueuedPythonManager, UnqueuedManager
from lwr.managers.stateful import StatefulManager
from lwr.persistence.store import LAUNCHED, LAUNCHING, PENDING, JobRecord, JobStore

WaitFor = Callable[..., Any]


class Harness:
    """Builds StatefulManagers over one store and staging directory, and cleans up after them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.store = JobStore(tmp_path / "state")
        self.staging = tmp_path / "staging"
        self.gates = tmp_path / "gates"
        self.gates.mkdir()
        self.managers: list[StatefulManager] = []
        self.launched: set[str] = set()  # every external id seen, to kill leftovers of failed tests

    def manager(
        self, backend: Manager | None = None, start: bool = True, **options: str
    ) -> StatefulManager:
        if backend is None:
            options = {"max_concurrent_jobs": "1", "min_polling_interval": "0.05", **options}
            backend = QueuedPythonManager("local", options)
        manager = StatefulManager(
            backend,
            self.store,
            self.staging,
            tool_dependency_dir=self.tmp / "deps",
            maximum_stream_size=4096,
        )
        self.managers.append(manager)
        manager.listeners.append(lambda _m, r: r.external_id and self.launched.add(r.external_id))
        if start:
            manager.start()
        return manager

    def gate(self, name: str) -> str:
        """A command fragment that blocks until :meth:`open` is called with ``name``."""
        gate, teardown = self.gates / name, self.gates / "_teardown"
        return f"while [ ! -e '{gate}' ] && [ ! -e '{teardown}' ]; do sleep 0.02; done"

    def open(self, name: str) -> None:
        (self.gates / name).touch()

    def close(self) -> None:
        self.open("_teardown")
        for manager in self.managers:
            manager.stop()
        for record in self.store.in_states("local", (JobState.QUEUED, JobState.RUNNING)):
            if record.external_id:
                self.launched.add(record.external_id)
        for external_id in self.launched:
            if ":" in external_id:  # a local process, not a fake backend's id
                process.kill_group(external_id, grace=0.5)
        self.store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    built = Harness(tmp_path)
    yield built
    built.close()


def run_job(manager: StatefulManager, job_id: str, command: str, **launch: Any) -> JobRecord:
    manager.setup(job_id, "cat1", "1.0")
    return manager.submit(job_id, {"command_line": command, **launch})


def final(manager: StatefulManager, job_id: str, wait_for: WaitFor) -> dict[str, Any]:
    status = wait_for(
        lambda: (s := manager.status(job_id))["complete"] == "true" and s,
        timeout=15,
        what=f"job {job_id} to finish",
    )
    return status  # type: ignore[no-any-return]


def state(manager: StatefulManager, job_id: str) -> JobState:
    return manager.record(job_id).state


def settle(manager: StatefulManager, passes: int = 5) -> None:
    """Give the monitor several passes (poll interval 0.05 s) to do something it should not."""
    time.sleep(manager.backend.poll_interval * passes)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- the happy path ---------------------------------------------------------------------------


def test_setup_submit_complete(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    record = manager.setup("1", "cat1", "1.0")
    assert (record.state, record.attempt) == (JobState.SETUP, 1)
    assert manager.directory("1").sub("inputs").is_dir()
    assert manager.status("1") == {"complete": "false", "status": "preprocessing", "job_id": "1"}
    (manager.directory("1").sub("inputs") / "in.txt").write_text("input data\n")
    queued = manager.submit(
        "1",
        {"command_line": "cat ../inputs/in.txt; echo err >&2; echo o > ../outputs/out.txt; exit 3"},
    )
    assert queued.state is JobState.QUEUED
    status = final(manager, "1", wait_for)
    assert status["status"] == "complete"
    assert status["returncode"] == 3
    assert status["stdout"] == "input data\n"
    assert status["stderr"] == "err\n"
    assert status["outputs_directory_contents"] == ["out.txt"]
    assert status["job_directory"] == str(harness.staging / "1")
    assert status["attempt"] == 1
    assert status["reason"] is None
    record = manager.record("1")
    assert record.return_code == 3 and record.launch_state == LAUNCHED
    assert "command_line" not in (record.launch or {})  # kept in the script, not the database


def test_tool_streams_from_metadata_are_preferred(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "1", "echo tool-out > ../metadata/tool_stdout; echo job-out")
    assert final(manager, "1", wait_for)["stdout"] == "tool-out\n"


def test_streams_in_status_are_bounded(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "1", "echo FIRST; head -c 100000 /dev/zero | tr '\\0' x; echo; echo LAST")
    stdout = final(manager, "1", wait_for)["stdout"]
    assert len(stdout) <= 4096
    assert stdout.startswith("FIRST") and stdout.rstrip().endswith("LAST")


def test_env_and_dependencies_reach_the_command(harness: Harness, wait_for: WaitFor) -> None:
    env_sh = harness.tmp / "deps" / "bwa" / "0.7" / "env.sh"
    env_sh.parent.mkdir(parents=True)
    env_sh.write_text("BWA=loaded; export BWA\n")
    manager = harness.manager()
    run_job(
        manager,
        "1",
        'echo "$GREETING $BWA"',
        env=[{"name": "GREETING", "value": "hello world"}],
        dependencies_description={
            "requirements": [{"name": "bwa", "version": "0.7", "type": "package"}]
        },
    )
    assert final(manager, "1", wait_for)["stdout"] == "hello world loaded\n"


def test_dynamic_file_sources_are_realized_inside_the_job_only(
    harness: Harness, wait_for: WaitFor
) -> None:
    manager = harness.manager()
    sources = [
        {"path": "galaxy.json", "kind": "x"},
        {"path": "../../../etc/passwd"},
        {"path": "bad\ud800name"},
        {"path": "missing.json"},
        "not a mapping",
    ]
    run_job(manager, "1", "echo '{\"a\": 1}' > galaxy.json", dynamic_file_sources=sources)
    status = final(manager, "1", wait_for)
    assert status["realized_dynamic_file_sources"] == [
        {"path": "galaxy.json", "kind": "x", "contents": '{"a": 1}\n'}
    ]


def test_submit_for_an_unknown_job(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    with pytest.raises(UnknownJobError):
        manager.submit("9", {"command_line": "true"})
    record = manager.submit(
        "9", {"command_line": "true", "setup_params": {"tool_id": "t", "tool_version": "2"}}
    )
    assert record.state is JobState.QUEUED
    assert (record.launch or {})["setup"] == {"tool_id": "t", "tool_version": "2"}
    assert final(manager, "9", wait_for)["returncode"] == 0


def test_submit_without_a_directory_is_refused(harness: Harness) -> None:
    manager = harness.manager()
    manager.setup("1")
    manager.directory("1").delete()
    with pytest.raises(InvalidJobStateError):
        manager.submit("1", {"command_line": "true"})


def test_bad_requests(harness: Harness) -> None:
    manager = harness.manager()
    with pytest.raises(UnknownJobError):
        manager.status("nope")
    with pytest.raises(InvalidRequestError):
        manager.status("../x")
    with pytest.raises(InvalidRequestError):
        manager.setup("a/b")
    manager.setup("1")
    with pytest.raises(InvalidRequestError):
        manager.submit("1", {"command_line": "  "})
    with pytest.raises(InvalidRequestError):
        manager.submit("1", {"command_line": "true", "env": [{"name": "A B", "value": "x"}]})
    assert state(manager, "1") is JobState.SETUP  # nothing was queued by the refused submits


# -- idempotence and attempts -----------------------------------------------------------------


def test_duplicate_submit_runs_the_job_once(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    count = harness.tmp / "count"
    command = f"echo ran >> {count}"
    run_job(manager, "1", command)
    again = manager.submit("1", {"command_line": command})
    assert again.state in (JobState.QUEUED, JobState.RUNNING, JobState.COMPLETE)
    final(manager, "1", wait_for)
    manager.submit("1", {"command_line": command})  # after completion: still ignored
    settle(manager)
    assert count.read_text() == "ran\n"
    assert manager.record("1").attempt == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"env": [{"name": "A B", "value": "x"}]},
        {"env": [{"name": "A", "value": "x", "raw": "false"}]},
        {"dependencies_description": {"requirements": [{"name": "x", "version": ".."}]}},
        {"command_line": "cd __PULSAR_JOBS_DIRECTORY__"},
    ],
)
def test_a_repeated_submit_is_checked_like_the_first(
    harness: Harness, wait_for: WaitFor, bad: dict[str, object]
) -> None:
    """Found by fuzzing: a malformed submit of a job already queued answered 200 (the repeat
    was ignored before anything was checked); the same request is refused in any state."""
    manager = harness.manager()
    run_job(manager, "1", "true")
    with pytest.raises(InvalidRequestError):
        manager.submit("1", {"command_line": "true", **bad})
    final(manager, "1", wait_for)
    with pytest.raises(InvalidRequestError):
        manager.submit("1", {"command_line": "true", **bad})


def test_setup_while_queued_or_running_changes_nothing(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "a", harness.gate("a"))
    run_job(manager, "b", "true")
    wait_for(lambda: state(manager, "a") is JobState.RUNNING, what="a to run")
    for job_id in ("a", "b"):
        (manager.directory(job_id).sub("inputs") / "marker").write_text("keep")
    before = {job_id: manager.record(job_id) for job_id in ("a", "b")}
    for job_id in ("a", "b"):
        after = manager.setup(job_id, "other_tool")
        assert after == before[job_id]
        assert (manager.directory(job_id).sub("inputs") / "marker").read_text() == "keep"
    assert state(manager, "b") is JobState.QUEUED
    harness.open("a")
    assert final(manager, "a", wait_for)["returncode"] == 0
    assert final(manager, "b", wait_for)["returncode"] == 0


def test_setup_after_finish_starts_attempt_two_in_a_clean_directory(
    harness: Harness, wait_for: WaitFor
) -> None:
    manager = harness.manager()
    count = harness.tmp / "count"
    run_job(manager, "1", f"echo ran >> {count}; echo first > ../outputs/out.txt; exit 1")
    assert final(manager, "1", wait_for)["returncode"] == 1
    directory = manager.directory("1")
    record = manager.setup("1", "cat1", "1.0")
    assert (record.attempt, record.state, record.return_code) == (2, JobState.SETUP, None)
    assert not (directory.sub("outputs") / "out.txt").exists()
    assert directory.return_code() is None
    assert not (directory.root / "stdout").exists()
    assert manager.status("1")["status"] == "preprocessing"
    manager.submit("1", {"command_line": f"echo ran >> {count}; echo second"})
    status = final(manager, "1", wait_for)
    assert (status["attempt"], status["returncode"], status["stdout"]) == (2, 0, "second\n")
    assert count.read_text() == "ran\nran\n"


# -- queueing ---------------------------------------------------------------------------------


def test_concurrency_limit_keeps_the_second_job_queued(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    started_b = harness.tmp / "b_started"
    run_job(manager, "a", harness.gate("a"))
    run_job(manager, "b", f"touch {started_b}")
    wait_for(lambda: state(manager, "a") is JobState.RUNNING, what="a to run")
    settle(manager)
    b = manager.record("b")
    assert (b.state, b.launch_state) == (JobState.QUEUED, PENDING)
    assert manager.status("b")["status"] == "queued"
    assert not started_b.exists()
    harness.open("a")
    final(manager, "b", wait_for)
    assert started_b.exists()
    assert manager.record("a").updated <= manager.record("b").updated


def test_queue_is_first_in_first_out(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    order = harness.tmp / "order"
    run_job(manager, "first", harness.gate("first"))
    for job_id in ("c", "a", "b"):
        run_job(manager, job_id, f"echo {job_id} >> {order}")
    harness.open("first")
    for job_id in ("c", "a", "b"):
        final(manager, job_id, wait_for)
    assert order.read_text().split() == ["c", "a", "b"]


def test_unqueued_runs_everything_at_once(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager(UnqueuedManager("local", {"min_polling_interval": "0.05"}))
    for job_id in ("1", "2", "3"):
        run_job(manager, job_id, harness.gate("all"))
    wait_for(
        lambda: all(state(manager, j) is JobState.RUNNING for j in ("1", "2", "3")),
        what="all three to run",
    )
    harness.open("all")
    for job_id in ("1", "2", "3"):
        assert final(manager, job_id, wait_for)["status"] == "complete"


# -- cancel and clean -------------------------------------------------------------------------


def test_cancel_a_queued_job_means_it_never_runs(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    ran = harness.tmp / "b_ran"
    run_job(manager, "a", harness.gate("a"))
    run_job(manager, "b", f"touch {ran}")
    wait_for(lambda: state(manager, "a") is JobState.RUNNING, what="a to run")
    cancelled = manager.cancel("b")
    assert cancelled.state is JobState.CANCELLED
    harness.open("a")
    final(manager, "a", wait_for)
    settle(manager)
    assert not ran.exists()
    status = manager.status("b")
    assert (status["complete"], status["status"], status["returncode"]) == (
        "true",
        "cancelled",
        None,
    )
    assert "cancelled by the client" in status["stderr"]
    assert manager.record("b").launch_state == PENDING


def test_cancel_a_running_job_kills_its_process_group(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    pid_file = harness.tmp / "sleep.pid"
    run_job(manager, "1", f"sleep 300 & echo $! > {pid_file}; wait")
    wait_for(
        lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job's sleep to start"
    )
    grandchild = int(pid_file.read_text())
    leader, _ = process.parse_identity(manager.record("1").external_id or "")
    assert manager.cancel("1").state is JobState.CANCELLED
    wait_for(lambda: gone(grandchild), timeout=5, what="the grandchild sleep to die")
    assert gone(leader)
    settle(manager)
    record = manager.record("1")
    assert (record.state, record.return_code) == (JobState.CANCELLED, None)  # not turned into lost
    assert manager.status("1")["status"] == "cancelled"


def test_cancel_a_finished_job_changes_nothing(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "1", "true")
    final(manager, "1", wait_for)
    assert manager.cancel("1").state is JobState.COMPLETE
    with pytest.raises(UnknownJobError):
        manager.cancel("2")


def test_clean_a_finished_job(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "1", "echo x > ../outputs/o")
    final(manager, "1", wait_for)
    manager.clean("1")
    assert not (harness.staging / "1").exists()
    assert manager.find("1") is None
    with pytest.raises(UnknownJobError):
        manager.status("1")


def test_clean_a_running_job_kills_it_first(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    pid_file = harness.tmp / "sleep.pid"
    run_job(manager, "1", f"sleep 300 & echo $! > {pid_file}; wait")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job to start")
    manager.clean("1")
    wait_for(lambda: gone(int(pid_file.read_text())), timeout=5, what="the job to die")
    assert not (harness.staging / "1").exists()
    assert harness.store.get("local", "1") is None


# -- listeners --------------------------------------------------------------------------------


def test_listeners_hear_every_state_change(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    heard: list[tuple[str, JobState]] = []

    def broken(_manager: StatefulManager, _record: JobRecord) -> None:
        raise RuntimeError("listener bug")

    manager.listeners.append(broken)  # a failing listener must not stop the others or the job
    manager.listeners.append(lambda m, r: heard.append((r.job_id, r.state)))
    run_job(manager, "1", "true")
    final(manager, "1", wait_for)
    wait_for(lambda: ("1", JobState.COMPLETE) in heard)
    assert heard == [("1", JobState.QUEUED), ("1", JobState.RUNNING), ("1", JobState.COMPLETE)]
    manager.setup("2")
    manager.cancel("2")
    assert heard[-1] == ("2", JobState.CANCELLED)


# -- backends that fail -----------------------------------------------------------------------


class RefusingBackend(Manager):
    """Fake of a scheduler that refuses every job, as ``sbatch`` does for a bad partition.

    A fake because a real refusal needs a real scheduler; the stateful layer only sees the
    SubmitError, so this is all it needs. Jobs whose command contains "accept" are run for real
    by a local backend, to show that one refusal does not block the queue.
    """

    type_name = "refusing"

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        self.poll_interval = 0.05
        self.max_concurrent_jobs = 1
        self.local = UnqueuedManager(name, {})

    def bind(self, wake: Callable[[], None]) -> None:
        super().bind(wake)
        self.local.bind(wake)

    def launch(self, spec: LaunchSpec) -> str:
        if "accept" in spec.script.read_text():
            return self.local.launch(spec)
        if "explode" in spec.script.read_text():
            raise RuntimeError("backend bug")
        raise SubmitError(
            "sbatch refused the job",
            argv=["sbatch", "--parsable", str(spec.script)],
            returncode=1,
            stderr="sbatch: error: invalid partition specified: nope",
        )

    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        return self.local.poll(jobs)

    def cancel(self, job: ActiveJob) -> None:
        self.local.cancel(job)


def test_a_refused_launch_fails_the_job_with_the_schedulers_words(
    harness: Harness, wait_for: WaitFor
) -> None:
    manager = harness.manager(RefusingBackend("local", {}))
    run_job(manager, "1", "true")
    run_job(manager, "2", "echo accept")
    status = final(manager, "1", wait_for)
    assert status["status"] == "failed"
    assert status["returncode"] is None
    assert "invalid partition specified: nope" in status["reason"]
    assert "launch failed" in status["reason"]
    assert "LWR: job failed: launch failed" in status["stderr"]
    assert final(manager, "2", wait_for)["stdout"] == "accept\n"


def test_an_unexpected_launch_exception_fails_the_job_and_is_logged(
    harness: Harness, wait_for: WaitFor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="lwr.managers.stateful")
    manager = harness.manager(RefusingBackend("local", {}))
    run_job(manager, "1", "explode")
    status = final(manager, "1", wait_for)
    assert status["status"] == "failed"
    assert "backend bug" in status["reason"]
    assert "launch raised" in caplog.text


class SlowLaunchBackend(Manager):
    """Fake backend whose launch blocks until released, to cancel a job in mid-launch.

    A real scheduler cannot be paused at that exact moment; the fake records what the stateful
    layer asks of it.
    """

    type_name = "slow"

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        self.poll_interval = 0.05
        self.entered = threading.Event()
        self.release = threading.Event()
        self.cancelled: list[str] = []

    def launch(self, spec: LaunchSpec) -> str:
        self.entered.set()
        assert self.release.wait(10)
        return f"ext-{spec.job_id}"

    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        return {job.external_id: ExternalStatus(JobState.RUNNING) for job in jobs}

    def cancel(self, job: ActiveJob) -> None:
        self.cancelled.append(job.external_id)


def test_a_job_cancelled_while_launching_is_stopped_once_launched(
    harness: Harness, wait_for: WaitFor
) -> None:
    backend = SlowLaunchBackend("local", {})
    manager = harness.manager(backend)
    run_job(manager, "1", "true")
    assert backend.entered.wait(10)
    assert manager.record("1").launch_state == LAUNCHING
    assert manager.cancel("1").state is JobState.CANCELLED
    backend.release.set()
    wait_for(lambda: backend.cancelled == ["ext-1"], what="the launched job to be cancelled")
    settle(manager)
    assert manager.record("1").state is JobState.CANCELLED


class FlakyPollBackend(UnqueuedManager):
    """A local backend whose first polls raise, like a scheduler command timing out."""

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        self.failures = 2

    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        if self.failures:
            self.failures -= 1
            raise OSError("squeue timed out")
        return super().poll(jobs)


def test_the_monitor_survives_a_failing_poll(harness: Harness, wait_for: WaitFor) -> None:
    backend = FlakyPollBackend("local", {"min_polling_interval": "0.05"})
    manager = harness.manager(backend)
    run_job(manager, "1", "echo ok")
    assert final(manager, "1", wait_for)["stdout"] == "ok\n"
    assert backend.failures == 0


# -- recovery after a restart -----------------------------------------------------------------


def test_a_restarted_manager_reattaches_to_a_running_job(
    harness: Harness, wait_for: WaitFor
) -> None:
    count = harness.tmp / "count"
    first = harness.manager()
    run_job(first, "1", f"{harness.gate('1')}; echo ran >> {count}")
    run_job(first, "2", f"echo ran2 >> {count}")
    wait_for(lambda: state(first, "1") is JobState.RUNNING, what="the job to run")
    external_id = first.record("1").external_id
    first.stop()  # the monitor stops; the job keeps running
    assert external_id and process.is_alive(external_id)

    second = harness.manager()
    settle(second)
    record = second.record("1")
    assert (record.state, record.launch_state, record.external_id) == (
        JobState.RUNNING,
        LAUNCHED,
        external_id,
    )
    assert state(second, "2") is JobState.QUEUED  # the limit still holds after the restart
    harness.open("1")
    assert final(second, "1", wait_for)["returncode"] == 0
    assert final(second, "2", wait_for)["returncode"] == 0
    assert sorted(count.read_text().split()) == ["ran", "ran2"]  # each ran exactly once


def _record_caught_mid_launch(harness: Harness, manager: StatefulManager, job_id: str) -> None:
    manager.setup(job_id)
    record = manager.record(job_id)
    harness.store.put(record.evolve(state=JobState.QUEUED, launch_state=LAUNCHING))


def test_a_job_caught_mid_launch_is_lost_not_relaunched(harness: Harness) -> None:
    before = harness.manager(start=False)
    _record_caught_mid_launch(harness, before, "1")
    after = harness.manager()
    status = after.status("1")
    assert status["status"] == "lost"
    assert "not relaunched" in status["reason"]
    assert not (harness.staging / "1" / "job_stdout").exists()


def test_a_job_caught_mid_launch_that_finished_is_complete(harness: Harness) -> None:
    before = harness.manager(start=False)
    _record_caught_mid_launch(harness, before, "1")
    (harness.staging / "1" / "return_code").write_text("0\n")
    after = harness.manager()
    status = after.status("1")
    assert (status["status"], status["returncode"]) == ("complete", 0)


def test_a_job_caught_mid_launch_found_by_the_backend_is_reattached(harness: Harness) -> None:
    class FindingBackend(SlowLaunchBackend):
        def find_orphan(self, spec: LaunchSpec) -> str | None:
            return f"found-{spec.name}"

    before = harness.manager(start=False)
    _record_caught_mid_launch(harness, before, "1")
    after = harness.manager(FindingBackend("local", {}))
    record = after.record("1")
    assert (record.launch_state, record.external_id) == (LAUNCHED, "found-lwr-local-1-1")
    assert record.state in (JobState.QUEUED, JobState.RUNNING)


def test_a_job_caught_staging_is_lost(harness: Harness) -> None:
    before = harness.manager(start=False)
    before.setup("1")
    harness.store.put(before.record("1").evolve(state=JobState.POSTPROCESSING))
    after = harness.manager()
    assert after.status("1")["status"] == "lost"


def test_recovery_leaves_other_managers_alone(harness: Harness) -> None:
    harness.store.put(JobRecord("other", "1", state=JobState.QUEUED, launch_state=LAUNCHING))
    harness.manager()
    other = harness.store.get("other", "1")
    assert other is not None and other.launch_state == LAUNCHING


class ReportingBackend(Manager):
    """Fake scheduler whose poll answers whatever the test sets in ``answer``.

    Real schedulers report states (NODE_FAIL, cancelled by an admin…) that a local process cannot
    produce; this fake lets the test pick one and see how the stateful layer records it.
    """

    type_name = "reporting"

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        self.poll_interval = 0.05
        self.answer = ExternalStatus(JobState.QUEUED, native_state="PD")

    def launch(self, spec: LaunchSpec) -> str:
        return f"sched-{spec.job_id}"

    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        return {job.external_id: self.answer for job in jobs}

    def cancel(self, job: ActiveJob) -> None:
        return None


@pytest.mark.parametrize(
    ("answer", "return_code", "expected_state", "expected_reason"),
    [
        # a recorded return code means the command ran to its end, whatever the scheduler says
        (ExternalStatus(JobState.FAILED, "NODE_FAIL", "NODE_FAIL"), "0", "complete", None),
        (ExternalStatus(JobState.COMPLETE), "5", "complete", None),
        # ...except when the scheduler says it was cancelled (by an administrator, say)
        (
            ExternalStatus(JobState.CANCELLED, "scancel by root", "CANCELLED"),
            "0",
            "cancelled",
            "scancel by root",
        ),
        # no return code: the scheduler's verdict stands, and a silent end is 'lost'
        (ExternalStatus(JobState.FAILED, "NODE_FAIL", "NODE_FAIL"), None, "failed", "NODE_FAIL"),
        (ExternalStatus(JobState.COMPLETE), None, "lost", "without recording a return code"),
    ],
)
def test_final_states_from_the_backend(
    harness: Harness,
    wait_for: WaitFor,
    answer: ExternalStatus,
    return_code: str | None,
    expected_state: str,
    expected_reason: str | None,
) -> None:
    backend = ReportingBackend("local", {})
    manager = harness.manager(backend)
    heard: list[JobState] = []
    manager.listeners.append(lambda m, r: heard.append(r.state))
    run_job(manager, "1", "true")
    wait_for(lambda: manager.record("1").launch_state == LAUNCHED, what="the launch")
    # the launch is recorded before the first poll: wait for the poll's native state
    wait_for(lambda: manager.record("1").native_state == "PD", what="the first poll")
    assert state(manager, "1") is JobState.QUEUED
    backend.answer = ExternalStatus(JobState.RUNNING, native_state="R")
    wait_for(lambda: state(manager, "1") is JobState.RUNNING, what="running")
    assert manager.record("1").native_state == "R"
    if return_code is not None:
        (harness.staging / "1" / "return_code").write_text(return_code)
    backend.answer = answer
    status = final(manager, "1", wait_for)
    assert status["status"] == expected_state
    if expected_reason is None:
        assert status["reason"] is None
    else:
        assert expected_reason in status["reason"]
    assert status["returncode"] == (int(return_code) if return_code is not None else None)
    assert heard == [JobState.QUEUED, JobState.RUNNING, JobState(expected_state)]
