"""The ``retention`` table: one row per finished job of a service user, and the work queue.

A row says whether the job's results are ``hot`` (in the job directory) or ``archived`` (in the
archive store, ``archive_id`` naming them), the deadline fixed for them, and ``task``: the next
step of an archive or a restore still to run. The queue is the rows holding a task; each step
changes the row in one transaction only after its own work is done and checked, so a server
killed at any moment finds the step it was in and runs it again (every step is idempotent, see
:mod:`lwr.service.retention.worker`). Both databases run the same SQL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from lwr.managers.namespace import owner_of
from lwr.persistence.database import Database, Writer
from lwr.persistence.store import JobRecord

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS retention (
    manager    TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    owner      TEXT NOT NULL,
    finished   REAL NOT NULL,
    hot_until  REAL,
    status     TEXT NOT NULL,
    task       TEXT,
    archive_id TEXT,
    sha256     TEXT,
    size       INTEGER,
    queued     REAL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    updated    REAL NOT NULL,
    leased_by  TEXT,
    lease_until REAL,
    PRIMARY KEY (manager, job_id)
);
CREATE INDEX IF NOT EXISTS retention_task ON retention (task, queued);
CREATE INDEX IF NOT EXISTS retention_due ON retention (status, hot_until)
"""

INBOX_VERSION = 1

#: The inbox: jobs whose retention may have to change (a user's job reached a final state, a
#: job with a row was cleaned or set up again), written by the job store's hooks in the very
#: transaction of that change, so the worker reads what changed instead of scanning every job.
#: ``version`` grows with each new mark, so an entry marked again while the worker handles it
#: is not deleted under it. Creating the inbox (a fresh database, or one from before it) also
#: marks, once, every job the worker has yet to see: finished jobs of users without their row,
#: and rows whose job attempt is gone (what each pass used to find by scanning).
_INBOX = """
CREATE TABLE IF NOT EXISTS retention_inbox (
    manager TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (manager, job_id)
);
CREATE INDEX IF NOT EXISTS retention_owner_finished ON retention (owner, status, finished);
DROP INDEX IF EXISTS retention_owner;
INSERT INTO retention_inbox (manager, job_id, version)
    SELECT j.manager, j.job_id, 1 FROM jobs j
    LEFT JOIN retention r ON r.manager=j.manager AND r.job_id=j.job_id AND r.seq=j.seq
    WHERE j.owner<>'' AND j.finished IS NOT NULL AND r.job_id IS NULL
    ON CONFLICT (manager, job_id) DO NOTHING;
INSERT INTO retention_inbox (manager, job_id, version)
    SELECT r.manager, r.job_id, 1 FROM retention r
    LEFT JOIN jobs j ON j.manager=r.manager AND j.job_id=r.job_id AND j.seq=r.seq
    WHERE j.job_id IS NULL
    ON CONFLICT (manager, job_id) DO NOTHING
"""
_MARK = (
    "INSERT INTO retention_inbox (manager, job_id, version) VALUES (?,?,1) "
    "ON CONFLICT (manager, job_id) DO UPDATE SET version = retention_inbox.version + 1"
)

HOT, ARCHIVED = "hot", "archived"
#: the steps of the queue, in the order an archive or a restore runs them
ARCHIVE, PURGE, RESTORE, FORGET = "archive", "purge", "restore", "forget"


@dataclass(frozen=True)
class Kept:
    """One job's retention row."""

    manager: str
    job_id: str
    seq: int
    owner: str
    finished: float
    hot_until: float | None
    status: str = HOT
    task: str | None = None
    archive_id: str | None = None
    sha256: str | None = None
    size: int | None = None
    queued: float | None = None
    attempts: int = 0
    error: str | None = None
    updated: float = 0.0
    #: the worker running this row's step, and until when (servers sharing one database)
    leased_by: str | None = None
    lease_until: float | None = None

    @property
    def archived(self) -> bool:
        return self.status == ARCHIVED

    @property
    def restoring(self) -> bool:
        return self.status == ARCHIVED and self.task == RESTORE


_NAMES = [f.name for f in fields(Kept)]
_COLUMNS = ", ".join(_NAMES)
_SELECT = f"SELECT {_COLUMNS} FROM retention"
#: the columns of a :class:`Kept`, for a query naming the table ``r``
R_COLUMNS = ", ".join(f"r.{name}" for name in _NAMES)


class RetentionTable:
    """Reads and guarded writes of ``retention`` rows."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("retention", _SCHEMA, SCHEMA_VERSION)
        db.migrate("retention_inbox", _INBOX, INBOX_VERSION)

    # -- the inbox: the job store's hooks (inside its transactions) and the worker's intake -----

    def job_finished(self, tx: Writer, record: JobRecord) -> None:
        """A final hook of the job store: a user's job reached a final state."""
        if record.owner is not None:
            tx.execute(_MARK, (record.manager, record.job_id))

    def job_forgotten(self, tx: Writer, manager: str, job_id: str) -> None:
        """A forget hook of the job store: a job went, or a new attempt of it began; its row,
        if it has one, now belongs to a job attempt that is gone."""
        if owner_of(job_id) is None:
            return
        found = tx.execute(
            "SELECT 1 FROM retention WHERE manager=? AND job_id=?", (manager, job_id)
        ).fetchone()
        if found is not None:
            tx.execute(_MARK, (manager, job_id))

    def get(self, manager: str, job_id: str) -> Kept | None:
        row = self.db.fetchone(f"{_SELECT} WHERE manager=? AND job_id=?", (manager, job_id))
        return Kept(*row) if row else None

    def of_jobs(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Kept]:
        """Rows of the given (manager, job_id) keys (a listing page), in one query per manager."""
        found: dict[tuple[str, str], Kept] = {}
        for manager in sorted({m for m, _ in keys}):
            ids = sorted({j for m, j in keys if m == manager})
            rows = self.db.fetchall(
                f"{_SELECT} WHERE manager=? AND job_id IN ({','.join('?' * len(ids))})",
                (manager, *ids),
            )
            found.update({(r[0], r[1]): Kept(*r) for r in rows})
        return found

    def of_owner(self, owner: str) -> list[Kept]:
        return [Kept(*r) for r in self.db.fetchall(f"{_SELECT} WHERE owner=?", (owner,))]

    def adopt(self, tx: Writer, kept: Kept) -> None:
        """Insert the row of a newly seen finished job (or of a job set up again since)."""
        values = [getattr(kept, name) for name in _NAMES]
        tx.execute(
            f"INSERT INTO retention ({_COLUMNS}) VALUES ({','.join('?' * len(_NAMES))}) "
            "ON CONFLICT (manager, job_id) DO NOTHING",
            values,
        )

    def adopt_all(self, tx: Writer, rows: list[Kept]) -> None:
        """:meth:`adopt` for several rows at once (one ``executemany``)."""
        if rows:
            tx.executemany(
                f"INSERT INTO retention ({_COLUMNS}) VALUES ({','.join('?' * len(_NAMES))}) "
                "ON CONFLICT (manager, job_id) DO NOTHING",
                [[getattr(kept, name) for name in _NAMES] for kept in rows],
            )

    def queue(self, now: float, worker: str, limit: int = 20) -> list[Kept]:
        """Rows with work to do now that no other worker holds, oldest first."""
        rows = self.db.fetchall(
            f"{_SELECT} WHERE task IS NOT NULL AND (queued IS NULL OR queued<=?) "
            "AND (lease_until IS NULL OR lease_until<? OR leased_by=?) ORDER BY queued LIMIT ?",
            (now, now, worker, limit),
        )
        return [Kept(*r) for r in rows]

    def due(self, now: float, limit: int = 100) -> list[Kept]:
        """Hot rows past their deadline with nothing queued."""
        rows = self.db.fetchall(
            f"{_SELECT} WHERE status=? AND task IS NULL AND hot_until IS NOT NULL "
            "AND hot_until<=? ORDER BY hot_until LIMIT ?",
            (HOT, now, limit),
        )
        return [Kept(*r) for r in rows]

    def advance(self, kept: Kept, expected_task: str | None, **changes: Any) -> bool:
        """Apply ``changes`` if the row still holds ``expected_task`` (and the same job attempt).

        The guard makes every transition a compare-and-set: a step finishing twice (a retry
        after a crash, or two callers) moves the row once.
        """
        with self.db.transaction() as tx:
            return self.advance_in(tx, kept, expected_task, **changes)

    def advance_in(self, tx: Writer, kept: Kept, expected_task: str | None, **changes: Any) -> bool:
        changes.setdefault("updated", time.time())
        if "task" in changes and changes["task"] is not None and "queued" not in changes:
            changes["queued"] = time.time()
        assignments = ", ".join(f"{key}=?" for key in changes)
        task_clause = "task IS NULL" if expected_task is None else "task=?"
        params: list[Any] = [*changes.values(), kept.manager, kept.job_id, kept.seq]
        if expected_task is not None:
            params.append(expected_task)
        found = tx.execute(
            f"UPDATE retention SET {assignments} WHERE manager=? AND job_id=? AND seq=? "
            f"AND {task_clause}",
            params,
        )
        return bool(getattr(found, "rowcount", 1))

    def claim(self, kept: Kept, worker: str, until: float) -> bool:
        """Take the row's step for ``worker`` unless another worker's lease still runs.

        Servers sharing one PostgreSQL database each run a worker: the lease keeps two of them
        from running one step at once (the steps are idempotent, but two restores extracting
        into one job at the same time would trip over each other).
        """
        with self.db.transaction() as tx:
            found = tx.execute(
                "UPDATE retention SET leased_by=?, lease_until=? WHERE manager=? AND job_id=? "
                "AND seq=? AND (lease_until IS NULL OR lease_until<? OR leased_by=?)",
                (worker, until, kept.manager, kept.job_id, kept.seq, time.time(), worker),
            )
            return bool(getattr(found, "rowcount", 1))

    def delete(self, kept: Kept) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "DELETE FROM retention WHERE manager=? AND job_id=? AND seq=?",
                (kept.manager, kept.job_id, kept.seq),
            )
