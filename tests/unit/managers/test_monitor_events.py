"""The monitor acts on events, not on its timer: the throughput stall of issue 14.

Every manager here polls once an hour (``min_polling_interval = 3600``), so a job that moves on
during a test moved on through an event (a submit, a process's end waking the monitor, a slot
freed), never through the timer. Waits are bounded by ``wait_for`` timeouts far below the hour;
nothing measures how fast anything happens.
"""

from __future__ import annotations

import threading
from typing import Any

from lwr.managers.base import JobState, LaunchSpec
from lwr.managers.local import QueuedPythonManager
from lwr.managers.stateful import StatefulManager
from tests.unit.managers.stateful_support import Harness, WaitFor, run_job, state

HOUR = "3600"


class CountingEvent(threading.Event):
    """The monitor's wake-up event, counting its passes: a ``clear`` starts one, and the next
    ``wait`` means every pass started so far is over."""

    def __init__(self) -> None:
        super().__init__()
        self.started = 0
        self.finished = 0
        self.changed = threading.Condition()

    def clear(self) -> None:
        super().clear()
        with self.changed:
            self.started += 1
            self.changed.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        with self.changed:
            self.finished = self.started
            self.changed.notify_all()
        return super().wait(timeout)


def test_a_queued_job_starts_when_a_slot_frees_without_the_timer(
    harness: Harness, wait_for: WaitFor
) -> None:
    """One slot: B waits behind A, and starts when A ends, though the next timer pass is an hour
    away and no request arrives (the throughput burst's tail: every client is waiting)."""
    manager = harness.manager(max_concurrent_jobs="1", min_polling_interval=HOUR)
    run_job(manager, "a", harness.gate("a") + "; echo a")
    wait_for(lambda: state(manager, "a") is JobState.RUNNING, what="a to run")
    run_job(manager, "b", "echo b")
    assert state(manager, "b") is JobState.QUEUED
    harness.open("a")
    assert final_in_store(manager, "a", wait_for)["status"] == "complete"
    status = final_in_store(manager, "b", wait_for)
    assert (status["status"], status["stdout"]) == ("complete", "b\n")


class EndsBeforeRecorded(QueuedPythonManager):
    """A local backend whose ``launch`` returns only after the job's process has ended and the
    monitor has finished a whole pass started by that end's wake-up.

    That is the race a loaded server loses now and then: a short job ends, and the monitor's
    pass runs, while the launching thread has not yet recorded the job as launched, so the pass
    cannot see it and its wake-up is spent.
    """

    wakeup: CountingEvent

    def launch(self, spec: LaunchSpec) -> str:
        with self.wakeup.changed:
            before = self.wakeup.started
        self.ended = threading.Event()
        external_id = super().launch(spec)
        assert self.ended.wait(30), "the job's process did not end"
        with self.wakeup.changed:  # a pass begun after the end's wake-up, and over
            over = self.wakeup.changed.wait_for(lambda: self.wakeup.finished > before, 30)
        assert over, "the monitor made no pass after the job's end woke it"
        return external_id

    def wake(self) -> None:
        super().wake()
        self.ended.set()


def test_a_job_that_ends_before_its_launch_is_recorded_is_still_seen_ending(
    harness: Harness, wait_for: WaitFor
) -> None:
    backend = EndsBeforeRecorded(
        "local", {"max_concurrent_jobs": "1", "min_polling_interval": HOUR}
    )
    manager = harness.manager(backend, start=False)
    _count_passes(manager, backend)
    manager.start()
    run_job(manager, "quick", "echo done")
    status = final_in_store(manager, "quick", wait_for)
    assert (status["status"], status["stdout"]) == ("complete", "done\n")


class EndsUnheard(QueuedPythonManager):
    """A local backend whose processes end without waking the monitor (as if the reaper's
    thread had not been scheduled yet on a loaded machine)."""

    def _ended(self, spec: LaunchSpec) -> None:
        self.unheard.set()

    unheard = threading.Event()


def test_a_status_request_records_the_end_of_a_local_job_itself(
    harness: Harness, wait_for: WaitFor
) -> None:
    """The job's process has ended and nothing told the monitor: the store still says running,
    and the client's next status request records the end and answers complete. The queued job
    behind it then starts in the freed slot, with no timer pass and no other request."""
    backend = EndsUnheard("local", {"max_concurrent_jobs": "1", "min_polling_interval": HOUR})
    backend.unheard = threading.Event()
    manager = harness.manager(backend)
    run_job(manager, "first", harness.gate("first") + "; echo first")
    wait_for(lambda: state(manager, "first") is JobState.RUNNING, what="first to run")
    run_job(manager, "second", "echo second")
    harness.open("first")
    assert backend.unheard.wait(15)
    assert state(manager, "first") is JobState.RUNNING  # nobody recorded the end yet
    status = manager.status("first")
    assert (status["status"], status["stdout"]) == ("complete", "first\n")
    assert state(manager, "first") is JobState.COMPLETE
    wait_for(lambda: state(manager, "second") is not JobState.QUEUED, what="second to start")


def final_in_store(manager: StatefulManager, job_id: str, wait_for: WaitFor) -> dict[str, Any]:
    """The job's status once the store holds its final state, asking no status before.

    A status request records the end of a local job itself (``Monitor._look_in``); waiting on
    status answers would hide whether the monitor did its part.
    """
    wait_for(lambda: state(manager, job_id).is_final, timeout=15, what=f"{job_id} to finish")
    return manager.status(job_id)


def _count_passes(manager: StatefulManager, backend: Any) -> None:
    """Give ``manager`` a counting wake-up event (before its monitor thread starts)."""
    event = CountingEvent()
    manager._wakeup = event
    backend.bind(event.set)
    backend.wakeup = event
