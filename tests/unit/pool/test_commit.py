"""A failed commit of a final status names its job in the log (the one case the lease cannot
decide, see docs/elastic_workers.md); an update that is not final fails quietly as before."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from lwr.pool.leases import LeaseTable
from lwr.pool.resends import Resends
from lwr.pool.worker import PoolConsumer


class BrokenChannel:
    """A transactional channel whose commit fails as a broken connection makes it fail."""

    def __init__(self) -> None:
        self.acked: list[Any] = []

    def basic_ack(self, tag: Any) -> None:
        self.acked.append(tag)

    def tx_commit(self) -> None:
        raise ConnectionResetError("connection reset by peer")


def consumer() -> PoolConsumer:
    """A consumer with only what ``_flush`` uses (no broker, no manager threads)."""
    worker = PoolConsumer.__new__(PoolConsumer)
    worker.leases = LeaseTable()
    worker.early_cancels = set()
    worker.manager = SimpleNamespace(name="m")  # type: ignore[assignment]
    worker.exchange = SimpleNamespace(publish_on=lambda *args: None)  # type: ignore[assignment]
    worker._channel = BrokenChannel()
    worker._crash_at = ""
    worker._hub_gone = threading.Event()
    worker.waker = SimpleNamespace(wake=lambda: None)  # type: ignore[assignment]
    worker.ledger = SimpleNamespace(resends=Resends("w", lambda entry: None))  # type: ignore[assignment]
    return worker


@pytest.mark.parametrize("final", [True, False])
def test_a_failed_commit_names_the_job_only_for_a_final_status(
    final: bool, caplog: pytest.LogCaptureFixture
) -> None:
    worker = consumer()
    worker.leases.take("j1", SimpleNamespace(delivery_tag=7))
    worker.leases.offer("j1", {"job_id": "j1", "status": "complete"}, final=final)
    with caplog.at_level(logging.ERROR, logger="lwr.pool.worker"):
        with pytest.raises(ConnectionResetError):
            worker._flush()
    named = "job m/j1: committing its final status and setup acknowledgement failed" in caplog.text
    assert named == final
    assert worker._channel.acked == ([7] if final else [])
    assert worker.leases.get("j1") is not None  # not released: the caller gives it up


class RecordingChannel:
    """A transactional channel that records what each commit carried."""

    def __init__(self) -> None:
        self.pending: list[Any] = []
        self.commits: list[list[Any]] = []

    def basic_ack(self, tag: Any) -> None:
        self.pending.append(("ack", tag))

    def basic_reject(self, tag: Any, requeue: bool) -> None:
        self.pending.append(("reject", tag, requeue))

    def tx_commit(self) -> None:
        self.commits.append(self.pending)
        self.pending = []


def recording_consumer() -> PoolConsumer:
    worker = consumer()
    channel = RecordingChannel()
    worker._channel = channel
    worker.exchange = SimpleNamespace(  # type: ignore[assignment]
        publish_on=lambda _channel, _queue, body: channel.pending.append(("status", body["job_id"],
                                                                          body["status"]))
    )  # fmt: skip
    worker._announced = lambda job_id: None  # type: ignore[method-assign]
    return worker


def test_updates_queued_together_go_out_in_one_commit_each_final_with_its_ack() -> None:
    worker = recording_consumer()
    worker.leases.take("j1", SimpleNamespace(delivery_tag=1))
    worker.leases.take("j2", SimpleNamespace(delivery_tag=2))
    worker.leases.offer("j1", {"job_id": "j1", "status": "running"}, final=False)
    worker.leases.offer("j1", {"job_id": "j1", "status": "complete"}, final=True)
    worker.leases.offer("j2", {"job_id": "j2", "status": "complete"}, final=True)
    worker._flush()
    assert worker._channel.commits == [
        [
            ("status", "j1", "running"),
            ("status", "j1", "complete"),
            ("ack", 1),
            ("status", "j2", "complete"),
            ("ack", 2),
        ]
    ]
    assert worker.leases.get("j1") is None and worker.leases.get("j2") is None
    assert worker.leases.finished_total == 2


def test_nothing_after_a_final_status_in_the_same_batch_is_sent() -> None:
    """A second final of one lease would ack its delivery twice: the broker closes the channel."""
    worker = recording_consumer()
    worker.leases.take("j1", SimpleNamespace(delivery_tag=1))
    worker.leases.offer("j1", {"job_id": "j1", "status": "complete"}, final=True)
    worker.leases.offer("j1", {"job_id": "j1", "status": "cancelled"}, final=True)
    worker.leases.offer("j1", {"job_id": "j1", "status": "running"}, final=False)
    worker._flush()
    assert worker._channel.commits == [[("status", "j1", "complete"), ("ack", 1)]]


def test_nothing_queued_means_no_commit() -> None:
    worker = recording_consumer()
    worker._flush()
    assert worker._channel.commits == []


def test_after_the_hub_died_nothing_is_sent_and_every_held_job_is_given_back() -> None:
    """Updates taken in the same pass as the hub's death may be its jobs' cut-short ends: none
    is sent; every held setup goes back to the queue in one commit and its job is stopped."""
    worker = recording_consumer()
    discarded: list[str] = []
    worker._discard = discarded.append  # type: ignore[method-assign]
    worker.leases.take("j1", SimpleNamespace(delivery_tag=1))
    worker.leases.take("j2", SimpleNamespace(delivery_tag=2))
    worker.leases.offer("j1", {"job_id": "j1", "status": "failed"}, final=True)
    worker.on_hub_lost()
    worker._flush()
    assert worker._channel.commits == [[("reject", 1, True), ("reject", 2, True)]]
    assert sorted(discarded) == ["j1", "j2"] and len(worker.leases) == 0
    worker.leases.offer("j1", {"job_id": "j1", "status": "failed"}, final=True)  # too late
    worker._flush()
    assert worker._channel.commits == [[("reject", 1, True), ("reject", 2, True)]]


def test_copies_are_acked_in_one_commit_of_their_own_and_only_on_their_channel() -> None:
    """A copy queued by a handler is acked by the next flush, outside any handler; one from a
    session that ended went back to the queue with its channel and is not acked on this one."""
    worker = recording_consumer()
    copies = worker.ledger.resends.copies
    copies.append(("j1", SimpleNamespace(delivery_tag=5, channel=worker._channel)))
    copies.append(("j2", SimpleNamespace(delivery_tag=6, channel=object())))
    worker._flush()
    assert worker._channel.commits == [[("ack", 5)]]
    assert worker.ledger.resends.copies == []


def test_a_copy_that_joined_a_lease_during_its_final_commit_is_acked_next() -> None:
    worker = recording_consumer()
    lease = worker.leases.take("j1", SimpleNamespace(delivery_tag=1, channel=worker._channel))
    worker.leases.offer("j1", {"job_id": "j1", "status": "complete"}, final=True)
    commit = worker._channel.tx_commit

    def commit_while_a_copy_arrives() -> None:  # py-amqp runs handlers during the wait
        lease.deliveries.append(SimpleNamespace(delivery_tag=2, channel=worker._channel))
        worker._channel.tx_commit = commit
        commit()

    worker._channel.tx_commit = commit_while_a_copy_arrives
    worker._flush()
    worker._flush()
    assert worker._channel.commits == [[("status", "j1", "complete"), ("ack", 1)], [("ack", 2)]]
