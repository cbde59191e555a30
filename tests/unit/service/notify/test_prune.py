"""Pruning the outbox: sent and failed rows go after ``notify_keep_days``, pending ones never."""

from __future__ import annotations

import time
from collections import Counter

from lwr.managers import namespace
from lwr.managers.base import JobState
from lwr.persistence.store import JobRecord, JobStore
from lwr.service.notify.outbox import FAILED, PENDING, SENT, NotifyStore
from lwr.service.notify.sender import Sender
from lwr.service.notify.settings import NotifyConfig
from tests.notify_rows import add_rows

DAY = 86400.0


def _statuses(notify: NotifyStore) -> Counter[str]:
    return Counter(row.status for row in notify.rows())


def test_old_sent_and_failed_rows_are_pruned_in_batches(store: JobStore) -> None:
    notify = NotifyStore(store.db)
    now = time.time()
    add_rows(notify, 230, SENT, now - 31 * DAY)
    add_rows(notify, 20, FAILED, now - 40 * DAY)
    add_rows(notify, 5, PENDING, None)  # waiting since long ago: still owed
    add_rows(notify, 7, SENT, now - 29 * DAY)  # young enough to keep
    add_rows(notify, 3, FAILED, now - DAY)
    assert notify.prune(now - 30 * DAY, batch=100) == 100  # one batch, one transaction
    sender = Sender(notify, NotifyConfig(keep_days=30))
    assert sender.prune(now, batch=100) == 150  # the rest, batch after batch
    assert _statuses(notify) == {PENDING: 5, SENT: 7, FAILED: 3}
    assert sender.prune(now) == 0


def test_keep_days_zero_keeps_everything(store: JobStore) -> None:
    notify = NotifyStore(store.db)
    add_rows(notify, 3, SENT, 1.0)
    assert NotifyConfig(keep_days=0).keep_seconds is None
    assert Sender(notify, NotifyConfig(keep_days=0)).prune() == 0
    assert _statuses(notify) == {SENT: 3}


def test_the_senders_loop_prunes(store: JobStore) -> None:
    """The thread itself, not only the method: a row older than keep_days disappears."""
    notify = NotifyStore(store.db)
    add_rows(notify, 2, SENT, time.time() - 2 * DAY)
    sender = Sender(notify, NotifyConfig(keep_days=1, poll_interval=0.05))
    sender.start()
    try:
        deadline = time.monotonic() + 30
        while notify.rows() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    assert notify.rows() == []


def test_a_final_state_written_again_after_its_rows_were_pruned_tells_no_one(
    store: JobStore,
) -> None:
    """Pruning drops the row that made a repeated final state a no-op (UNIQUE job_key): a job
    finished longer ago than the rows are kept must not be announced a second time."""
    notify = NotifyStore(store.db, keep_seconds=0.2)
    store.final_hooks.append(notify.enqueue)
    notify.set_channels("alice", {"webhook_url": "https://hook.example/in"})
    record = store.put(JobRecord("_default_", namespace.scoped("alice", "1")))
    final = store.put(record.evolve(state=JobState.COMPLETE))
    (row,) = notify.rows()
    notify.sent(row)
    time.sleep(0.3)  # the job finished longer ago than rows are kept
    assert notify.prune(time.time() - 0.2) == 1
    store.put(final.evolve(state=JobState.CANCELLED))  # e.g. a late cancel
    assert notify.rows() == []
    store.delete("_default_", final.job_id)  # a new attempt of the same id is news again
    again = store.put(JobRecord("_default_", namespace.scoped("alice", "1")))
    store.put(again.evolve(state=JobState.FAILED))
    assert [row.body["state"] for row in notify.rows()] == ["failed"]
