"""The pool's claims of setups without a broker: the first claim of a uuid wins on every worker.

The broker side (real workers, Galaxy's resends) is tested in
tests/integration/amqp/test_pool_resend.py.
"""

from __future__ import annotations

import time

from lwr.persistence.outbox import EARLY_KILL_MEMORY
from lwr.pool import protocol, resends
from lwr.pool.resends import Resends


class Stream:
    """One log every worker reads in the same order, delivered when the test says so."""

    def __init__(self) -> None:
        self.entries: list[protocol.LedgerEntry] = []

    def write(self, entry: protocol.LedgerEntry) -> None:
        self.entries.append(entry)

    def deliver(self, *readers: Resends) -> None:
        pending, self.entries = self.entries, []
        for entry in pending:
            for reader in readers:
                reader.on_entry(entry)


def test_of_two_workers_claiming_one_uuid_at_once_only_the_first_runs_it() -> None:
    stream = Stream()
    left, right = Resends("left", stream.write), Resends("right", stream.write)
    outcome: dict[str, bool] = {}
    right.claim("job", "u-1", then=lambda won: outcome.__setitem__("right", won))
    left.claim("job", "u-1", then=lambda won: outcome.__setitem__("left", won))
    assert not left.known("u-1") and not outcome  # nothing decided before the claims are read
    stream.deliver(left, right)
    assert outcome == {"right": True, "left": False}
    assert left.known("u-1") and right.known("u-1")


def test_a_known_uuid_stays_claimed_and_done_is_heard_by_all() -> None:
    stream = Stream()
    worker, other = Resends("w", stream.write), Resends("o", stream.write)
    won: list[bool] = []
    worker.claim("job", "u-1", then=won.append)
    stream.deliver(worker, other)
    worker.started("job", "u-1")
    assert not other.ended("u-1")
    worker.finished("job")
    stream.deliver(worker, other)
    assert won == [True] and other.ended("u-1") and worker.ended("u-1")
    worker.finished("job")  # once only: nothing more is written
    assert stream.entries == []


def test_a_job_given_up_writes_no_done() -> None:
    stream = Stream()
    worker = Resends("w", stream.write)
    worker.started("job", "u-1")
    worker.given_up("job")
    worker.finished("job")
    assert stream.entries == []


def test_a_new_session_forgets_claims_and_copies_in_flight() -> None:
    stream = Stream()
    worker = Resends("w", stream.write)
    called: list[bool] = []
    worker.claim("job", "u-1", then=called.append)
    worker.copies.append(("job", object()))
    worker.new_session()  # the delivery went back to the queue with the old channel
    stream.deliver(worker)
    assert called == [] and worker.copies == []
    assert worker.known("u-1")  # the claim itself is in the log: a later copy is a copy


def test_claims_older_than_the_window_are_swept() -> None:
    worker = Resends("w", lambda entry: None)
    old = time.time() - EARLY_KILL_MEMORY - 10
    worker.on_entry(protocol.LedgerEntry("claim", "x", old, job_id="j", token="t0", uuid="old"))
    worker.on_entry(protocol.LedgerEntry("done", "x", old, uuid="old"))
    for index in range(1, resends.SWEEP_EVERY):
        entry = protocol.LedgerEntry("claim", "x", time.time(), job_id="j", token=f"t{index}",
                                     uuid=f"u{index}")  # fmt: skip
        worker.on_entry(entry)
    assert not worker.known("old") and not worker.ended("old")
    assert worker.known("u1")
