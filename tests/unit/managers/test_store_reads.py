"""How often the common requests read the job store: the per-job CPU of issue 14's throughput.

Every read is a query on the job store; a throughput job makes several status requests and one
submit, so a needless read there is paid many times per job. Each test counts the reads of the
calling thread only (the monitor's own thread may read meanwhile). Every manager polls once an
hour, so nothing here moves on through the timer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from lwr.managers.base import JobState
from lwr.managers.stateful import StatefulManager
from tests.unit.managers.stateful_support import Harness, WaitFor, run_job, state

HOUR = "3600"


def _count(monkeypatch: pytest.MonkeyPatch, manager: StatefulManager, name: str) -> list[int]:
    """Calls of ``manager.store.<name>`` from this thread, counted from now on."""
    calls: list[int] = []
    here = threading.get_ident()
    original: Callable[..., Any] = getattr(manager.store, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == here:
            calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(manager.store, name, counting)
    return calls


def test_a_status_request_of_a_running_job_reads_its_record_once(
    harness: Harness, wait_for: WaitFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's own look at the process (a waitpid) finds it running as recorded: the
    record it read is the answer, not read a second time."""
    manager = harness.manager(max_concurrent_jobs="2", min_polling_interval=HOUR)
    run_job(manager, "a", harness.gate("a"))
    wait_for(lambda: state(manager, "a") is JobState.RUNNING, what="a to run")
    reads = _count(monkeypatch, manager, "get")
    assert manager.status("a")["status"] == "running"
    assert len(reads) == 1
    harness.open("a")
    wait_for(lambda: manager.status("a")["complete"] == "true", what="a to finish")


def test_a_lone_submit_reads_the_queue_once(
    harness: Harness, wait_for: WaitFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing else waits, so after launching the job the submit does not read the queue again
    (a job queued meanwhile is dispatched by its own submit)."""
    manager = harness.manager(max_concurrent_jobs="2", min_polling_interval=HOUR)
    manager.setup("a", "cat1", "1.0")
    reads = _count(monkeypatch, manager, "in_states")
    manager.submit("a", {"command_line": harness.gate("a")})
    assert state(manager, "a") is JobState.RUNNING
    assert len(reads) == 1
    harness.open("a")
    wait_for(lambda: manager.status("a")["complete"] == "true", what="a to finish")


def test_a_submit_still_dispatches_every_job_waiting_for_a_free_slot(
    harness: Harness, wait_for: WaitFor
) -> None:
    """Two slots, three jobs: the third waits, and starts when a slot frees (no timer)."""
    manager = harness.manager(max_concurrent_jobs="2", min_polling_interval=HOUR)
    for name in ("a", "b", "c"):
        run_job(manager, name, harness.gate(name))
    assert [state(manager, n) for n in ("a", "b", "c")] == [
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.QUEUED,
    ]
    harness.open("a")
    wait_for(lambda: state(manager, "c") is JobState.RUNNING, what="c to start")
    for name in ("b", "c"):
        harness.open(name)
    wait_for(lambda: manager.status("c")["complete"] == "true", what="c to finish")
