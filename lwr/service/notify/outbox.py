"""Users' notification channels and the durable outbox of notifications, in the job store's DB.

Why the job store's database and not a file of its own (as the AMQP outbox is): a notification
must exist exactly when the job's final state does. :meth:`NotifyStore.enqueue` is installed as a
final hook of :class:`~lwr.persistence.store.JobStore`, so the rows are inserted by the very
transaction that makes the job final: a crash before its commit leaves neither, a crash after it
leaves both, and the sender finds the rows at its next pass. One row per job attempt and channel
(``UNIQUE (job_key, channel)``): a final state written twice (a cancel racing a finish) queues
nothing more.

A row is *claimed* before it is sent by moving its ``next_try`` past the send (a lease,
``notify_lease``), compare-and-set on the value read, so two processes on one PostgreSQL
database never both send it; a sender killed mid-send leaves the claim to expire and the row is
sent again after the lease: that retry is the at-least-once window docs/service.md describes.

Sent and failed rows are deleted ``notify_keep_days`` after they ended (:meth:`NotifyStore.prune`,
run by the sender, in batches). A final state written again for a job whose rows may have been
deleted (it finished longer ago than that) queues nothing, so pruning never lets a job be told
twice.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from lwr.egress import EgressPolicy
from lwr.errors import InvalidRequestError
from lwr.persistence.database import Database, Writer
from lwr.persistence.store import JobRecord

#: 2: the index on ``done`` that pruning reads (added in place to a version 1 table)
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_channels (
    owner          TEXT PRIMARY KEY,
    email          TEXT,
    webhook_url    TEXT,
    webhook_secret TEXT,
    updated        REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id         TEXT PRIMARY KEY,
    job_key    TEXT NOT NULL,
    channel    TEXT NOT NULL,
    owner      TEXT NOT NULL,
    target     TEXT NOT NULL,
    secret     TEXT,
    body       TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    next_try   REAL NOT NULL,
    created    REAL NOT NULL,
    done       REAL,
    last_error TEXT,
    UNIQUE (job_key, channel)
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_try);
CREATE INDEX IF NOT EXISTS notifications_done ON notifications (done)
"""

#: row statuses: waiting (or being sent under a lease), delivered, given up after the last try
PENDING, SENT, FAILED = "pending", "sent", "failed"
EMAIL, WEBHOOK = "email", "webhook"

_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
_COLUMNS = "id, channel, owner, target, secret, body, status, attempts, next_try, last_error"


@dataclass(frozen=True)
class Channels:
    """Where a user wants to hear of their jobs' ends (None: that channel is off)."""

    email: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """What the profile route shows: never the secret itself, only whether there is one."""
        return {
            "email": self.email,
            "webhook_url": self.webhook_url,
            "webhook_secret_set": self.webhook_secret is not None,
        }


@dataclass(frozen=True)
class Notification:
    """One row of the outbox: ``id`` is the delivery id (Message-ID, ``X-LWR-Delivery``)."""

    id: str
    channel: str
    owner: str
    target: str
    secret: str | None
    body: dict[str, Any]
    status: str
    attempts: int
    next_try: float
    last_error: str | None


def job_status(record: JobRecord, public_url: str) -> dict[str, Any]:
    """The job's status as a notification carries it (the webhook's exact JSON body)."""
    return {
        "event": "job.finished",
        "id": record.client_job_id,
        "manager": record.manager,
        "owner": record.owner,
        "state": record.state.value,
        "reason": record.reason,
        "return_code": record.return_code,
        "submitted": record.created,
        "finished": record.finished,
        "url": f"{public_url}/ui/jobs/{quote(record.client_job_id, safe='')}"
        if public_url
        else None,
    }


class NotifyStore:
    """The two tables; the sender (:mod:`~lwr.service.notify.sender`) and the web layer use it."""

    def __init__(
        self,
        db: Database,
        public_url: str = "",
        *,
        egress: EgressPolicy | None = None,
        keep_seconds: float | None = None,
    ) -> None:
        self.db = db
        self.public_url = public_url.rstrip("/")
        #: where a webhook may point (checked when one is set; the sender checks every try)
        self.egress = egress or EgressPolicy()
        #: how long finished rows are kept (None: forever); see :meth:`prune`
        self.keep_seconds = keep_seconds
        #: set when a row is queued, so the sender need not wait for its next poll
        self.wakeup = threading.Event()
        db.migrate("notify", _SCHEMA, SCHEMA_VERSION)

    # -- channels -----------------------------------------------------------------------------

    def channels(self, owner: str) -> Channels:
        row = self.db.fetchone(
            "SELECT email, webhook_url, webhook_secret FROM notify_channels WHERE owner=?",
            (owner,),
        )
        return Channels(*row) if row else Channels()

    def set_channels(
        self, owner: str, changes: dict[str, str | None]
    ) -> tuple[Channels, str | None]:
        """Change the channels named in ``changes`` ('' turns one off); others stay as they were.

        A webhook without a secret gets a generated one, returned (this once) as the second
        value, since a signature nobody can check protects nothing.
        """
        unknown = set(changes) - {"email", "webhook_url", "webhook_secret"}
        if unknown:
            raise InvalidRequestError(f"unknown notification setting(s): {sorted(unknown)}")
        current = self.channels(owner)
        merged = {**current.__dict__, **{k: (v or None) for k, v in changes.items()}}
        _check_email(merged["email"])
        _check_url(merged["webhook_url"])
        if changes.get("webhook_url"):  # a URL set earlier is judged again at every send
            self.egress.check_url(str(merged["webhook_url"]))
        generated = None
        if merged["webhook_url"] and not merged["webhook_secret"]:
            generated = merged["webhook_secret"] = secrets.token_urlsafe(32)
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO notify_channels (owner, email, webhook_url, webhook_secret, updated) "
                "VALUES (?,?,?,?,?) ON CONFLICT (owner) DO UPDATE SET email=excluded.email, "
                "webhook_url=excluded.webhook_url, webhook_secret=excluded.webhook_secret, "
                "updated=excluded.updated",
                (
                    owner,
                    merged["email"],
                    merged["webhook_url"],
                    merged["webhook_secret"],
                    time.time(),
                ),
            )
        return Channels(**merged), generated

    # -- the outbox ---------------------------------------------------------------------------

    def enqueue(self, tx: Writer, record: JobRecord) -> None:
        """The job store's final hook: queue one row per channel of the job's owner.

        Runs inside the transaction writing the final state; the admin token's jobs (no owner)
        notify no one.
        """
        owner = record.owner
        if owner is None or self._told_long_ago(record):
            return
        row = tx.execute(
            "SELECT email, webhook_url, webhook_secret FROM notify_channels WHERE owner=?",
            (owner,),
        ).fetchone()
        if row is None:
            return
        channels = Channels(*row)
        body = json.dumps(job_status(record, self.public_url), sort_keys=True)
        job_key = f"{record.manager}/{record.job_id}/{record.seq}/{record.created!r}"
        now = time.time()
        for channel, target, secret in (
            (EMAIL, channels.email, None),
            (WEBHOOK, channels.webhook_url, channels.webhook_secret),
        ):
            if target:
                tx.execute(
                    "INSERT INTO notifications (id, job_key, channel, owner, target, secret, "
                    "body, status, attempts, next_try, created) VALUES (?,?,?,?,?,?,?,?,0,?,?) "
                    "ON CONFLICT (job_key, channel) DO NOTHING",
                    (
                        uuid.uuid4().hex,
                        job_key,
                        channel,
                        owner,
                        target,
                        secret,
                        body,
                        PENDING,
                        now,
                        now,
                    ),
                )
                self.wakeup.set()

    def _told_long_ago(self, record: JobRecord) -> bool:
        """A final state written again after its rows may have been pruned: not news."""
        if self.keep_seconds is None or record.finished is None:
            return False
        return record.finished < time.time() - self.keep_seconds

    def prune(self, older_than: float, batch: int = 500) -> int:
        """Delete up to ``batch`` sent or failed rows that ended before ``older_than``.

        One short transaction per batch, so a large backlog never holds the store's writer
        for long; the caller repeats while a full batch was deleted. Pending rows are never
        deleted, however old.
        """
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications "
                "WHERE done < ? AND status IN (?, ?) ORDER BY done LIMIT ?)",
                (older_than, SENT, FAILED, batch),
            )
            return int(getattr(cursor, "rowcount", 0))

    def counts(self, owner: str) -> dict[str, int]:
        """How many of ``owner``'s rows are in each status (what ``lwr users show`` prints)."""
        rows = self.db.fetchall(
            "SELECT status, COUNT(*) FROM notifications WHERE owner=? GROUP BY status", (owner,)
        )
        found = {str(status): int(n) for status, n in rows}
        return {status: found.get(status, 0) for status in (PENDING, SENT, FAILED)}

    def last_failure(self, owner: str) -> tuple[Notification, float] | None:
        """``owner``'s latest row given up on, with when, or None."""
        row = self.db.fetchone(
            f"SELECT {_COLUMNS}, done FROM notifications WHERE owner=? AND status=? "
            "ORDER BY done DESC LIMIT 1",
            (owner, FAILED),
        )
        return (_notification(row[:-1]), float(row[-1])) if row else None

    def due(self, now: float, limit: int = 20) -> list[Notification]:
        """Pending rows whose time has come, oldest first."""
        rows = self.db.fetchall(
            f"SELECT {_COLUMNS} FROM notifications WHERE status=? AND next_try<=? "
            "ORDER BY next_try, created LIMIT ?",
            (PENDING, now, limit),
        )
        return [_notification(row) for row in rows]

    def claim(self, item: Notification, lease: float) -> bool:
        """Take ``item`` for ``lease`` seconds; False when another sender took it first."""
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "UPDATE notifications SET next_try=? WHERE id=? AND status=? AND next_try=?",
                (time.time() + lease, item.id, PENDING, item.next_try),
            )
            return getattr(cursor, "rowcount", 0) == 1

    def sent(self, item: Notification) -> None:
        self._finish(item, SENT, item.attempts + 1, None, None)

    def retry_later(self, item: Notification, when: float, error: str) -> None:
        self._finish(item, PENDING, item.attempts + 1, when, error)

    def failed(self, item: Notification, error: str) -> None:
        self._finish(item, FAILED, item.attempts + 1, None, error)

    def rows(self, owner: str | None = None) -> list[Notification]:
        """Every row (of ``owner``), for the admin and the tests."""
        where, args = ("WHERE owner=?", (owner,)) if owner is not None else ("", ())
        rows = self.db.fetchall(
            f"SELECT {_COLUMNS} FROM notifications {where} ORDER BY created", args
        )
        return [_notification(row) for row in rows]

    def _finish(
        self, item: Notification, status: str, attempts: int, when: float | None, error: str | None
    ) -> None:
        now = time.time()
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE notifications SET status=?, attempts=?, next_try=?, done=?, last_error=? "
                "WHERE id=?",
                (
                    status,
                    attempts,
                    when if when is not None else item.next_try,
                    None if status == PENDING else now,
                    error,
                    item.id,
                ),
            )


def _notification(row: tuple[Any, ...]) -> Notification:
    nid, channel, owner, target, secret, body, status, attempts, next_try, error = row
    return Notification(
        nid,
        channel,
        owner,
        target,
        secret,
        json.loads(body),
        status,
        int(attempts),
        float(next_try),
        error,
    )


def _check_email(address: str | None) -> None:
    if address is not None and (len(address) > 254 or not _EMAIL.match(address)):
        raise InvalidRequestError(f"not an email address: {address!r}")


def _check_url(url: str | None) -> None:
    if url is None:
        return
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise InvalidRequestError("webhook_url must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit checks the port only when it is asked for
    except ValueError as exc:
        raise InvalidRequestError(f"webhook_url is not a URL ({exc}): {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise InvalidRequestError(f"webhook_url must be an http(s) URL with a host, not {url!r}")
    if "@" in parts.netloc:  # the signature authenticates; user:password@ only confuses hosts
        raise InvalidRequestError("webhook_url must not hold credentials (user:password@)")
