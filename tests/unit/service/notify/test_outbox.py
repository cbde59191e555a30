"""The notification outbox over a real (SQLite) job store: rows queued with the final state."""

from __future__ import annotations

import time

import pytest

from lwr.errors import InvalidRequestError
from lwr.managers import namespace
from lwr.managers.base import JobState
from lwr.persistence.store import JobRecord, JobStore
from lwr.service.notify.outbox import EMAIL, PENDING, SENT, WEBHOOK, NotifyStore


@pytest.fixture
def notify(store: JobStore) -> NotifyStore:
    outbox = NotifyStore(store.db, "https://lwr.example/")
    store.final_hooks.append(outbox.enqueue)
    outbox.set_channels("alice", {"email": "alice@example.org", "webhook_url": "http://h/x"})
    return outbox


def _job(store: JobStore, owner: str | None, job_id: str = "1") -> JobRecord:
    return store.put(JobRecord("_default_", namespace.scoped(owner, job_id)))


def test_a_final_state_queues_one_row_per_channel_in_its_transaction(
    store: JobStore, notify: NotifyStore
) -> None:
    record = _job(store, "alice")
    store.put(record.evolve(state=JobState.RUNNING))
    assert notify.rows() == []  # not final: nothing
    store.put(record.evolve(state=JobState.COMPLETE, return_code=0))
    rows = notify.rows()
    assert sorted(row.channel for row in rows) == [EMAIL, WEBHOOK]
    assert {row.status for row in rows} == {PENDING} and notify.wakeup.is_set()
    body = rows[0].body
    assert body["id"] == "1" and body["state"] == "complete" and body["owner"] == "alice"
    assert body["url"] == "https://lwr.example/ui/jobs/1"
    webhook = next(row for row in rows if row.channel == WEBHOOK)
    assert webhook.secret and webhook.target == "http://h/x"


def test_a_final_state_written_again_queues_nothing_more(
    store: JobStore, notify: NotifyStore
) -> None:
    record = _job(store, "alice")
    final = store.put(record.evolve(state=JobState.COMPLETE))
    store.put(final.evolve(state=JobState.CANCELLED))
    assert len(notify.rows()) == 2


def test_a_new_attempt_of_the_same_id_is_told_again(store: JobStore, notify: NotifyStore) -> None:
    store.put(_job(store, "alice").evolve(state=JobState.COMPLETE))
    store.delete("_default_", namespace.scoped("alice", "1"))
    store.put(_job(store, "alice").evolve(state=JobState.FAILED))
    assert sorted(row.body["state"] for row in notify.rows()) == ["complete"] * 2 + ["failed"] * 2


def test_admin_jobs_and_users_without_channels_notify_no_one(
    store: JobStore, notify: NotifyStore
) -> None:
    for owner in (None, "bob"):
        store.put(_job(store, owner, "9").evolve(state=JobState.LOST))
    assert notify.rows() == []


def test_a_failing_hook_rolls_the_final_state_back(store: JobStore, notify: NotifyStore) -> None:
    """The row and the state are one transaction: neither exists without the other."""
    record = _job(store, "alice")

    def broken(tx: object, final: JobRecord) -> None:
        raise RuntimeError("disk full")

    store.final_hooks.append(broken)
    with pytest.raises(RuntimeError):
        store.put(record.evolve(state=JobState.COMPLETE))
    stored = store.get(record.manager, record.job_id)
    assert stored is not None and stored.state is JobState.SETUP and notify.rows() == []


def test_channels_are_validated_and_a_secret_generated(notify: NotifyStore) -> None:
    for bad in (
        {"email": "no-at-sign"},
        {"email": "a@b.c\r\nBcc: x@y.z"},
        {"webhook_url": "file:///etc/passwd"},
        {"webhook_url": "http://"},
        {"webhook_url": "http://hook.example:99999/in"},
        {"webhook_url": "http://\u2100/in"},
        {"webhook_url": "http://hook.example/in\r\nX-Evil: 1"},
        {"webhook_url": "http://user:pw@hook.example/in"},
        {"webhook_url": "http://127.0.0.1/in"},
        {"colour": "red"},
    ):
        with pytest.raises(InvalidRequestError):
            notify.set_channels("bob", bad)
    channels, secret = notify.set_channels("bob", {"webhook_url": "https://hook.example/in"})
    assert secret and channels.webhook_secret == secret
    assert channels.as_dict() == {
        "email": None,
        "webhook_url": "https://hook.example/in",
        "webhook_secret_set": True,
    }
    channels, again = notify.set_channels("bob", {"email": "bob@example.org"})
    assert again is None and channels.webhook_secret == secret  # others unchanged
    channels, _ = notify.set_channels("bob", {"webhook_url": "", "email": ""})
    assert channels.email is None and channels.webhook_url is None


def test_claim_is_taken_once_and_sent_rows_are_not_due(
    store: JobStore, notify: NotifyStore
) -> None:
    store.put(_job(store, "alice").evolve(state=JobState.COMPLETE))
    first, second = notify.due(time.time())
    assert notify.claim(first, lease=60) and not notify.claim(first, lease=60)
    assert [row.id for row in notify.due(time.time())] == [second.id]
    notify.sent(second)
    assert [row.status for row in notify.rows() if row.id == second.id] == [SENT]
    assert notify.due(time.time()) == []
    assert [row.id for row in notify.due(time.time() + 120)] == [first.id]  # the lease ran out
