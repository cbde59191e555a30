"""The lease table: what a pool worker may still say about a job, and kills that came early."""

from __future__ import annotations

from lwr.pool.leases import TOMBSTONE_TTL, LeaseTable


def test_updates_of_a_held_job_are_queued_in_order() -> None:
    table = LeaseTable()
    lease = table.take("a", "delivery-1")
    assert table.offer("a", {"status": "running"}, final=False)
    assert table.offer("a", {"status": "complete"}, final=True)
    pending = table.pending()
    assert [item.body["status"] for item in pending] == ["running", "complete"]
    assert all(item.lease is lease for item in pending) and pending[-1].final
    assert table.pending() == []


def test_nothing_is_queued_for_a_job_not_held() -> None:
    table = LeaseTable()
    assert not table.offer("never", {"status": "complete"}, final=True)
    assert table.pending() == []


def test_a_lease_given_up_is_not_current_even_if_the_job_comes_back() -> None:
    table = LeaseTable()
    old = table.take("a", "delivery-1")
    table.offer("a", {"status": "complete"}, final=True)
    assert table.release(old, finished=False)
    new = table.take("a", "delivery-2")
    (stale,) = table.pending()
    assert not table.is_current(stale.lease) and table.is_current(new)
    assert not table.release(old, finished=True)  # a second release of the old one changes nothing
    assert len(table) == 1 and table.finished_total == 0


def test_totals_count_takes_and_finishes() -> None:
    table = LeaseTable()
    for job in ("a", "b", "c"):
        table.take(job, job)
    for lease in table.held()[:2]:
        table.release(lease, finished=True)
    assert (table.received_total, table.finished_total, len(table)) == (3, 2, 1)


def test_a_kill_before_the_job_is_remembered_once_and_for_a_while() -> None:
    table = LeaseTable()
    table.bury("early", now=1000.0)
    assert table.killed("early", now=1001.0)
    assert not table.killed("early", now=1002.0)  # asked once: forgotten
    table.bury("late", now=1000.0)
    assert not table.killed("late", now=1000.0 + TOMBSTONE_TTL + 1)


def test_old_kills_are_dropped_when_new_ones_come() -> None:
    table = LeaseTable()
    table.bury("old", now=0.0)
    table.bury("new", now=TOMBSTONE_TTL + 10)
    assert not table.killed("old", now=TOMBSTONE_TTL + 10)
    assert table.killed("new", now=TOMBSTONE_TTL + 10)
