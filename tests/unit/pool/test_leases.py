"""The lease table: what a pool worker may still say about a job, and kills that came early."""

from __future__ import annotations

from lwr.pool.leases import LeaseTable


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
