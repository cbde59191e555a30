"""StatefulManager over backends that fail (small fakes) and across restarts: recovery.

Split from test_stateful.py, which covers the life cycle over real local backends; both use the
Harness of stateful_support.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

import pytest

from lwr.errors import SubmitError
from lwr.managers import process
from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec, Manager
from lwr.managers.local import UnqueuedManager
from lwr.managers.stateful import StatefulManager
from lwr.persistence.store import LAUNCHED, LAUNCHING, JobRecord
from tests.unit.managers.stateful_support import (
    Harness,
    WaitFor,
    final,
    run_job,
    settle,
    state,
)

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
