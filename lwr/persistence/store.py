"""The durable job store: one SQLite database with a versioned schema.

Why SQLite rather than a file per job: every transition is one small transaction (atomic and
durable across ``kill -9`` in WAL mode), a status lookup is a primary-key read whatever the number
of finished jobs, and a restart reads only the jobs that are not finished (an index on state), so
neither grows with history. The standard library has it everywhere, Windows included.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lwr.managers.base import JobState
from lwr.persistence import sqlite

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    manager      TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    state        TEXT NOT NULL,
    launch_state TEXT NOT NULL,
    external_id  TEXT,
    native_state TEXT,
    reason       TEXT,
    return_code  INTEGER,
    launch       TEXT,
    seq          INTEGER NOT NULL,
    created      REAL NOT NULL,
    updated      REAL NOT NULL,
    PRIMARY KEY (manager, job_id)
);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (manager, state, seq);
CREATE INDEX IF NOT EXISTS jobs_seq ON jobs (seq);
"""

#: launch_state values: not handed to the backend yet / hand-over in progress / handed over
PENDING, LAUNCHING, LAUNCHED = "pending", "launching", "launched"


@dataclass(frozen=True)
class JobRecord:
    """One job attempt as persisted. ``launch`` holds the submit parameters (JSON-able)."""

    manager: str
    job_id: str
    attempt: int = 1
    state: JobState = JobState.SETUP
    launch_state: str = PENDING
    external_id: str | None = None
    native_state: str | None = None
    reason: str | None = None
    return_code: int | None = None
    launch: dict[str, Any] | None = None
    seq: int = 0
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def evolve(self, **changes: Any) -> JobRecord:
        """A copy with ``changes`` applied and ``updated`` stamped."""
        return replace(self, updated=time.time(), **changes)


class JobStore:
    """Thread-safe access to the jobs table; one instance per server process.

    Writes go through one connection behind a lock (SQLite has one writer anyway); reads use a
    connection per thread, which WAL mode lets run beside a write, so status requests never
    queue behind the monitor's or another request's transaction.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "jobs.sqlite3"
        self._lock = threading.Lock()
        self._db = sqlite.connect(self.path)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._migrate()

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (made on first use, closed by :meth:`close`)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA cache_size=-512")  # 512 KiB: readers only need a few pages each
            self._local.db = db
            with self._lock:
                self._readers.append(db)
        return db

    def _migrate(self) -> None:
        with self._lock:
            sqlite.migrate(self._db, self.path, _SCHEMA, SCHEMA_VERSION)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite.transaction(self._db, self._lock)

    def get(self, manager: str, job_id: str) -> JobRecord | None:
        row = (
            self._reader()
            .execute("SELECT * FROM jobs WHERE manager=? AND job_id=?", (manager, job_id))
            .fetchone()
        )
        return _record(row) if row else None

    def put(self, record: JobRecord) -> JobRecord:
        """Insert or replace a record; a new record gets the next queue sequence number."""
        with self._transaction() as db:
            seq = record.seq
            if not seq:
                (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()
                record = replace(record, seq=seq)
            db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.manager,
                    record.job_id,
                    record.attempt,
                    record.state.value,
                    record.launch_state,
                    record.external_id,
                    record.native_state,
                    record.reason,
                    record.return_code,
                    json.dumps(record.launch) if record.launch is not None else None,
                    seq,
                    record.created,
                    record.updated,
                ),
            )
        return record

    def delete(self, manager: str, job_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM jobs WHERE manager=? AND job_id=?", (manager, job_id))

    def in_states(self, manager: str, states: Iterable[JobState]) -> list[JobRecord]:
        """Records of ``manager`` in any of ``states``, oldest submit first (queue order)."""
        values = [state.value for state in states]
        marks = ",".join("?" * len(values))
        rows = (
            self._reader()
            .execute(
                f"SELECT * FROM jobs WHERE manager=? AND state IN ({marks}) ORDER BY seq",
                (manager, *values),
            )
            .fetchall()
        )
        return [_record(row) for row in rows]

    def page(self, manager: str, before_seq: int | None, limit: int) -> list[JobRecord]:
        """Up to ``limit`` records of ``manager``, newest submit first, older than ``before_seq``.

        For listings that page through a manager's jobs (the TES ``GET /tasks``).
        """
        rows = (
            self._reader()
            .execute(
                "SELECT * FROM jobs WHERE manager=? AND seq<? ORDER BY seq DESC LIMIT ?",
                (manager, before_seq if before_seq is not None else 2**62, limit),
            )
            .fetchall()
        )
        return [_record(row) for row in rows]

    def finished_before(self, manager: str, cutoff: float, limit: int = 100) -> list[JobRecord]:
        """Finished records of ``manager`` last changed before ``cutoff`` (for retention)."""
        finals = ("complete", "failed", "cancelled", "lost")
        rows = (
            self._reader()
            .execute(
                "SELECT * FROM jobs WHERE manager=? AND state IN (?,?,?,?) AND updated<? LIMIT ?",
                (manager, *finals, cutoff, limit),
            )
            .fetchall()
        )
        return [_record(row) for row in rows]

    def count(self, manager: str | None = None) -> int:
        db = self._reader()
        if manager is None:
            (n,) = db.execute("SELECT COUNT(*) FROM jobs").fetchone()
        else:
            (n,) = db.execute("SELECT COUNT(*) FROM jobs WHERE manager=?", (manager,)).fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._db.close()


def _record(row: tuple[Any, ...]) -> JobRecord:
    (
        manager,
        job_id,
        attempt,
        state,
        launch_state,
        external_id,
        native_state,
        reason,
        return_code,
        launch,
        seq,
        created,
        updated,
    ) = row
    return JobRecord(
        manager=manager,
        job_id=job_id,
        attempt=attempt,
        state=JobState(state),
        launch_state=launch_state,
        external_id=external_id,
        native_state=native_state,
        reason=reason,
        return_code=return_code,
        launch=json.loads(launch) if launch else None,
        seq=seq,
        created=created,
        updated=updated,
    )
