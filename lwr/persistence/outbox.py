"""The durable outbox: messages LWR owes the broker, kept until the broker has taken them.

A status update is written here before anything tries to publish it and removed only after the
broker confirmed it (or, with application-level acknowledgements, after the client acknowledged
it). So a broker that is down, a connection that drops mid-publish or an LWR restart delays an
update but never loses it. The same database remembers the ``acknowledge_uuid`` of every message
consumed, so a message the client resends is answered again but not acted on twice.

It is its own SQLite file beside the job store (``outbox.sqlite3``) with its own connection and
schema version, so the two evolve independently and a busy outbox never blocks a job transition.
Being separate, a job's final state and the update announcing it are two commits: the outbox
therefore also records, in the same transaction as the message, which final state of which
attempt it has announced (``announced``), so that after a crash between the two commits the
messaging binding can find the finished jobs never announced and announce them
(:meth:`Outbox.announcements`, used by :mod:`lwr.messaging.bind_amqp`).

It also remembers kills that came before their job (``early_kills``): Galaxy's kill and setup
travel on two queues, so the broker may hand LWR a job's kill first; the setup that follows must
then not run the job (:mod:`lwr.messaging.consumers`). Kept on disk, because a restart between
the two messages must not turn a cancelled job into a running one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwr.persistence import sqlite

SCHEMA_VERSION = 3
#: how long a kill for a job not set up yet is remembered, in seconds: longer than a setup
#: queue's backlog takes to drain after an outage, far shorter than Galaxy reuses a job id
EARLY_KILL_MEMORY = 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    manager   TEXT NOT NULL,
    queue     TEXT NOT NULL,
    body      TEXT NOT NULL,
    ack_uuid  TEXT UNIQUE,
    published REAL,
    created   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (manager, published, seq);
CREATE TABLE IF NOT EXISTS consumed (
    uuid    TEXT PRIMARY KEY,
    manager TEXT NOT NULL,
    seen    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS consumed_seen ON consumed (seen);
CREATE TABLE IF NOT EXISTS announced (
    manager TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    state   TEXT NOT NULL,
    PRIMARY KEY (manager, job_id)
);
CREATE TABLE IF NOT EXISTS early_kills (
    manager TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    killed  REAL NOT NULL,
    PRIMARY KEY (manager, job_id)
);
CREATE INDEX IF NOT EXISTS early_kills_killed ON early_kills (killed);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('announced_since', (julianday('now') - 2440587.5) * 86400.0);
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One message waiting for the broker (``published`` is None) or for the client's ack."""

    seq: int
    manager: str
    queue: str
    body: dict[str, Any]
    ack_uuid: str | None
    published: float | None


class Outbox:
    """Thread-safe access to ``outbox.sqlite3``; one instance per server process."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "outbox.sqlite3"
        self._lock = threading.Lock()
        self._db = sqlite.connect(self.path)
        with self._lock:
            sqlite.migrate(self._db, self.path, _SCHEMA, SCHEMA_VERSION)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite.transaction(self._db, self._lock)

    # -- messages to publish ----------------------------------------------------------------

    def put(
        self,
        manager: str,
        queue: str,
        body: Mapping[str, Any],
        ack_uuid: str | None = None,
        final: tuple[str, int, str] | None = None,
    ) -> int:
        """Store a message to publish on ``queue`` (an unprefixed name: ``status_update``).

        ``final`` (job id, attempt, state) marks the message as announcing that job's final
        state; it is recorded in the same transaction.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO outbox (manager, queue, body, ack_uuid, published, created) "
                "VALUES (?,?,?,?,NULL,?)",
                (manager, queue, json.dumps(body), ack_uuid, time.time()),
            )
            if final is not None:
                db.execute(
                    "INSERT INTO announced VALUES (?,?,?,?) ON CONFLICT (manager, job_id) "
                    "DO UPDATE SET attempt=excluded.attempt, state=excluded.state",
                    (manager, *final),
                )
        return int(cursor.lastrowid or 0)

    # -- final states announced ---------------------------------------------------------------

    def announced_since(self) -> float:
        """When this outbox began recording announcements (jobs finished before were not)."""
        with self._lock:
            (value,) = self._db.execute(
                "SELECT value FROM meta WHERE key='announced_since'"
            ).fetchone()
        return float(value)

    def announcements(self, manager: str) -> dict[str, tuple[int, str]]:
        """job id -> (attempt, final state) announced for ``manager``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, attempt, state FROM announced WHERE manager=?", (manager,)
            ).fetchall()
        return {job_id: (int(attempt), str(state)) for job_id, attempt, state in rows}

    def note_announced(self, manager: str, job_id: str, attempt: int, state: str) -> None:
        """Record a final state announced by other means (a pool worker's broker transaction)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO announced VALUES (?,?,?,?) ON CONFLICT (manager, job_id) "
                "DO UPDATE SET attempt=excluded.attempt, state=excluded.state",
                (manager, job_id, attempt, state),
            )

    def forget_announced(self, manager: str, job_ids: Iterable[str]) -> int:
        """Drop the announcements of jobs the store no longer holds (cleaned, expired)."""
        with self._transaction() as db:
            cursor = db.executemany(
                "DELETE FROM announced WHERE manager=? AND job_id=?",
                ((manager, job_id) for job_id in job_ids),
            )
        return cursor.rowcount

    def unpublished(self, manager: str, limit: int = 100) -> list[OutboxEntry]:
        """Messages of ``manager`` the broker has not taken yet, oldest first."""
        return self._select(
            "WHERE manager=? AND published IS NULL ORDER BY seq LIMIT ?", (manager, limit)
        )

    def unacknowledged(
        self, manager: str, published_before: float, limit: int = 100
    ) -> list[OutboxEntry]:
        """Published messages still waiting for the client's acknowledgement since before then."""
        return self._select(
            "WHERE manager=? AND published IS NOT NULL AND published < ? ORDER BY seq LIMIT ?",
            (manager, published_before, limit),
        )

    def published(self, entry: OutboxEntry, when: float | None = None) -> None:
        """The broker took ``entry``: forget it, or keep it until acknowledged if it asks to be."""
        with self._transaction() as db:
            if entry.ack_uuid is None:
                db.execute("DELETE FROM outbox WHERE seq=?", (entry.seq,))
            else:
                db.execute(
                    "UPDATE outbox SET published=? WHERE seq=?",
                    (time.time() if when is None else when, entry.seq),
                )

    def acknowledge(self, ack_uuid: str) -> bool:
        """The client acknowledged ``ack_uuid``; False when it was not (or no longer) waiting."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM outbox WHERE ack_uuid=?", (ack_uuid,))
        return cursor.rowcount > 0

    def count(self, manager: str | None = None, *, unpublished_only: bool = False) -> int:
        where, args = "WHERE 1=1", []
        if manager is not None:
            where += " AND manager=?"
            args.append(manager)
        if unpublished_only:
            where += " AND published IS NULL"
        with self._lock:
            (n,) = self._db.execute(f"SELECT COUNT(*) FROM outbox {where}", args).fetchone()
        return int(n)

    # -- messages consumed ------------------------------------------------------------------

    def consumed_before(self, ack_uuid: str) -> bool:
        """Whether a message carrying ``ack_uuid`` was already acted on."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM consumed WHERE uuid=?", (ack_uuid,)).fetchone()
        return row is not None

    def remember_consumed(self, ack_uuid: str, manager: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO consumed VALUES (?,?,?)", (ack_uuid, manager, time.time())
            )

    def forget_consumed(self, older_than: float) -> int:
        """Forget uuids seen before ``older_than``; a client stops resending long before that."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM consumed WHERE seen < ?", (older_than,))
        return cursor.rowcount

    # -- kills that came before their job ----------------------------------------------------

    def bury(self, manager: str, job_id: str, when: float | None = None) -> None:
        """Remember a kill for a job this server does not know (yet)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO early_kills VALUES (?,?,?) ON CONFLICT (manager, job_id) "
                "DO UPDATE SET killed=excluded.killed",
                (manager, job_id, time.time() if when is None else when),
            )

    def bury_many(self, manager: str, kills: Iterable[tuple[str, float]]) -> None:
        """Remember many kills (job id, when) in one commit: a pool worker's ledger catch-up.

        A kill already remembered keeps the later of its two times, so reading an old record of
        the ledger again never shortens the memory of a newer kill.
        """
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO early_kills VALUES (?,?,?) ON CONFLICT (manager, job_id) "
                "DO UPDATE SET killed=MAX(killed, excluded.killed)",
                ((manager, job_id, when) for job_id, when in kills),
            )

    def buried(self, manager: str, job_id: str, since: float) -> bool:
        """Whether a kill for ``job_id`` came at or after ``since`` and is still remembered."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM early_kills WHERE manager=? AND job_id=? AND killed >= ?",
                (manager, job_id, since),
            ).fetchone()
        return row is not None

    def exhume(self, manager: str, job_id: str) -> None:
        """Forget the early kill of ``job_id`` once its job is durably cancelled."""
        with self._transaction() as db:
            db.execute("DELETE FROM early_kills WHERE manager=? AND job_id=?", (manager, job_id))

    def forget_kills(self, older_than: float) -> int:
        """Forget early kills from before ``older_than`` (their setup never came)."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM early_kills WHERE killed < ?", (older_than,))
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _select(self, where: str, args: tuple[Any, ...]) -> list[OutboxEntry]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, manager, queue, body, ack_uuid, published FROM outbox {where}", args
            ).fetchall()
        return [
            OutboxEntry(seq, manager, queue, json.loads(body), ack_uuid, published)
            for seq, manager, queue, body, ack_uuid, published in rows
        ]
