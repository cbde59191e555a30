"""A pool worker's answers to kill, status and pool messages, with fakes for the manager and store.

The broker side is tested for real in tests/integration/amqp/test_pool*.py; here each decision is
pinned down: who answers a status request, what a kill does to a job not held here.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from lwr.managers.base import JobState
from lwr.persistence.store import JobRecord
from lwr.pool import protocol
from lwr.pool.handlers import Handlers
from lwr.pool.leases import LeaseTable


class FakeManager:
    name = "m"

    def __init__(self, *records: JobRecord) -> None:
        self.records = {r.job_id: r for r in records}
        self.cancelled: list[str] = []

    def find(self, job_id: str) -> JobRecord | None:
        return self.records.get(job_id)

    def status_of(self, record: JobRecord) -> dict[str, Any]:
        return {"job_id": record.job_id, "status": record.state.value}

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


class FakeOutbox:
    def __init__(self, announced: dict[str, tuple[int, str]]) -> None:
        self.announced = announced
        self.kills: set[tuple[str, str]] = set()

    def announcements(self, manager: str) -> dict[str, tuple[int, str]]:
        return dict(self.announced)

    def bury(self, manager: str, job_id: str) -> None:
        self.kills.add((manager, job_id))

    def bury_many(self, manager: str, kills: list[tuple[str, float]]) -> None:
        self.kills.update((manager, job_id) for job_id, _ in kills)
        self.commits = getattr(self, "commits", 0) + 1


class FakeLedger:
    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.unconfirmed: list[Callable[[], None]] = []

    def record(self, job_id: str, then: Callable[[], None]) -> None:
        self.events.append(f"recorded {job_id}")
        self.unconfirmed.append(then)

    def confirm(self) -> None:
        for then in self.unconfirmed:
            then()
        self.unconfirmed.clear()


class Worker(Handlers):
    """The handlers with what they send recorded instead of published."""

    def __init__(self, manager: FakeManager, announced: dict[str, tuple[int, str]]) -> None:
        self.manager = manager  # type: ignore[assignment]
        self.outbox = FakeOutbox(announced)  # type: ignore[assignment]
        self.leases = LeaseTable()
        self.worker_id = "w1"
        self.exchange = SimpleNamespace(prefix="pulsar_")  # type: ignore[assignment]
        self.answers: list[dict[str, Any]] = []
        self.drains: list[float | None] = []
        self.request_drain = self.drains.append
        self.events: list[str] = []
        self.ledger = FakeLedger(self.events)  # type: ignore[assignment]

    def broadcast(self, request: protocol.JobRequest) -> None:
        self.events.append(f"broadcast {request.action} {request.job_id}")

    def answer(self, body: dict[str, Any]) -> None:
        self.answers.append(body)


def _broadcast(worker: Worker, key: str, body: Any) -> None:
    worker._on_broadcast(body, SimpleNamespace(delivery_info={"routing_key": key}))  # type: ignore[arg-type]


def _job(job_id: str, state: JobState) -> JobRecord:
    return JobRecord("m", job_id, state=state)


def test_the_holder_republishes_a_running_job_on_its_lease() -> None:
    worker = Worker(FakeManager(_job("a", JobState.RUNNING)), {})
    worker.leases.take("a", "delivery")
    worker._status("a")
    (item,) = worker.leases.pending()
    assert item.body["status"] == "running" and not item.final and worker.answers == []


def test_a_held_job_already_final_says_nothing_its_final_status_is_on_its_way() -> None:
    worker = Worker(FakeManager(_job("a", JobState.COMPLETE)), {})
    worker.leases.take("a", "delivery")
    worker._status("a")
    assert worker.leases.pending() == [] and worker.answers == []


def test_a_job_finished_and_announced_here_is_answered_from_the_store() -> None:
    worker = Worker(FakeManager(_job("done", JobState.COMPLETE)), {"done": (1, "complete")})
    worker._status("done")
    assert worker.answers == [{"job_id": "done", "status": "complete"}]


def test_a_final_state_never_announced_is_not_told_another_worker_ran_the_job() -> None:
    worker = Worker(FakeManager(_job("done", JobState.COMPLETE)), {"done": (2, "complete")})
    worker._status("done")
    worker._status("unknown")
    assert worker.answers == []


def test_a_kill_for_a_job_not_held_is_remembered_for_its_setup() -> None:
    worker = Worker(FakeManager(), {})
    _broadcast(worker, "pulsar_.job.kill", protocol.JobRequest("later", "kill", "w2").to_body())
    assert worker.manager.cancelled == []  # type: ignore[attr-defined]
    assert worker.outbox.kills == {("m", "later")}  # type: ignore[attr-defined]


def test_a_kill_for_a_held_job_cancels_it() -> None:
    manager = FakeManager(_job("a", JobState.RUNNING))
    worker = Worker(manager, {})
    worker.leases.take("a", "delivery")
    _broadcast(worker, "pulsar_.job.kill", protocol.JobRequest("a", "kill", "w2").to_body())
    assert manager.cancelled == ["a"] and not worker.outbox.kills  # type: ignore[attr-defined]


def test_a_drain_command_drains_and_junk_on_the_pool_exchange_is_ignored() -> None:
    worker = Worker(FakeManager(), {})
    _broadcast(worker, "pulsar_.control.w1", protocol.DrainCommand("w1", 5.0).to_body())
    _broadcast(worker, "pulsar_.control.w1", {"command": "rm"})
    _broadcast(worker, "pulsar_.job.kill", {"job_id": "../x", "action": "kill", "origin": "w"})
    _broadcast(worker, "pulsar_.job.kill", protocol.JobRequest("../x", "kill", "w2").to_body())
    assert worker.drains == [5.0] and worker.manager.cancelled == []  # type: ignore[attr-defined]


def _galaxy(worker: Worker, action: str, body: Any) -> None:
    """Galaxy's kill or status message as the kill/status consumer hands it over."""
    message = SimpleNamespace(
        delivery_info={"routing_key": f"pulsar_{action}"},
        ack=lambda: worker.events.append("acked"),
        reject=lambda: worker.events.append("rejected"),
    )
    worker._on_request(body, message)  # type: ignore[arg-type]


def test_galaxys_kill_is_in_the_ledger_before_its_message_is_acked() -> None:
    worker = Worker(FakeManager(), {})
    worker.exchange = SimpleNamespace(prefix="pulsar_", routing_key=lambda n: f"pulsar_{n}")  # type: ignore[assignment]
    _galaxy(worker, "kill", {"job_id": "7"})
    _galaxy(worker, "status", {"job_id": "8"})  # a status request is not a kill: nothing to keep
    _galaxy(worker, "kill", {"job_id": "../x"})
    assert worker.events == ["recorded 7", "broadcast status 8", "acked", "rejected"]
    worker.ledger.confirm()  # type: ignore[attr-defined]
    assert worker.events[4:] == ["broadcast kill 7", "acked"]


def test_ledger_kills_cancel_the_holder_and_are_remembered_elsewhere_in_one_commit() -> None:
    manager = FakeManager(_job("held", JobState.RUNNING))
    worker = Worker(manager, {})
    worker.leases.take("held", "delivery")
    entries = [
        protocol.LedgerEntry("kill", "w2", 10.0, job_id=job_id)
        for job_id in ("held", "later", "../escape", "other")
    ]
    worker.on_ledger_kills(entries)
    assert manager.cancelled == ["held"]
    assert worker.outbox.kills == {("m", "later"), ("m", "other")}  # type: ignore[attr-defined]
    assert worker.outbox.commits == 1  # type: ignore[attr-defined]
    worker.on_ledger_kills([])  # a catch-up that found nothing
    assert worker.outbox.commits == 1  # type: ignore[attr-defined]
