"""The durable job store: one database (SQLite by default, PostgreSQL by ``database_url``).

Why a database rather than a file per job: every transition is one small transaction (atomic and
durable across ``kill -9``; SQLite runs in WAL mode), a status lookup is a primary-key read
whatever the number of finished jobs, and a restart reads only the jobs that are not finished (an
index on state), so neither grows with history. SQLite needs no set-up and the standard library
has it everywhere, Windows included; a shared service can point ``database_url`` at PostgreSQL
(:mod:`lwr.persistence.database` speaks both).

Besides the jobs, the store keeps what a job listing shows without touching the disk: the files
uploaded into each job (name, type, size; also what a plan's total-input limit is checked
against), the owner of each job (a service user, or '' for the admin token) and when it finished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lwr.managers import namespace
from lwr.managers.base import JobState
from lwr.persistence.database import Database, Writer, open_database

SCHEMA_VERSION = 3

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
    owner        TEXT NOT NULL DEFAULT '',
    finished     REAL,
    PRIMARY KEY (manager, job_id)
);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (manager, state, seq);
CREATE INDEX IF NOT EXISTS jobs_seq ON jobs (seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, seq);
CREATE INDEX IF NOT EXISTS jobs_owner_state ON jobs (owner, state, seq);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_manager ON jobs (manager, seq);
CREATE TABLE IF NOT EXISTS job_files (
    manager TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    type    TEXT NOT NULL,
    name    TEXT NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (manager, job_id, type, name)
)
"""

#: schema 2 -> 3: the owner and finish time of each job (the files table is new)
_UPGRADE_TO_3 = (
    "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE jobs ADD COLUMN finished REAL",
)

_COLUMNS = (
    "manager, job_id, attempt, state, launch_state, external_id, native_state, reason, "
    "return_code, launch, seq, created, updated, owner, finished"
)
_SELECT = f"SELECT {_COLUMNS} FROM jobs"
_UPSERT = (
    f"INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (manager, job_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ")[2:])
)
_FINALS = tuple(state.value for state in JobState if state.is_final)

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
    #: when the job reached a final state (set by the store), None while it is not final
    finished: float | None = None

    @property
    def owner(self) -> str | None:
        """The service user who set the job up; None for the admin token (Galaxy)."""
        return namespace.owner_of(self.job_id)

    @property
    def client_job_id(self) -> str:
        """The id the job's client knows it by (the stored id without its owner)."""
        return namespace.client_id(self.job_id)

    def evolve(self, **changes: Any) -> JobRecord:
        """A copy with ``changes`` applied and ``updated`` stamped."""
        return replace(self, updated=time.time(), **changes)


class JobStore:
    """Thread-safe access to the jobs tables; one instance per server process.

    Writes are serialised behind one connection (SQLite has one writer anyway); reads use a
    connection per thread, so status requests never queue behind the monitor's or another
    request's transaction (see :mod:`lwr.persistence.database`).
    """

    def __init__(self, directory: Path, database_url: str | None = None) -> None:
        self.db: Database = open_database(directory, database_url)
        #: the SQLite file (None on PostgreSQL)
        self.path: Path | None = getattr(self.db, "path", None)
        self.db.migrate("jobs", _SCHEMA, SCHEMA_VERSION, _upgrade)
        #: called inside the transaction that writes a final state, as ``hook(tx, record)``:
        #: what must exist exactly when the final state does (lwr.service.notify's outbox)
        self.final_hooks: list[Callable[[Writer, JobRecord], None]] = []
        #: called as ``hook(tx, manager, job_id)`` inside the transaction that deletes a job or
        #: starts a new attempt of it (its earlier attempt, if any, is gone): retention's inbox
        self.forget_hooks: list[Callable[[Writer, str, str], None]] = []

    def get(self, manager: str, job_id: str) -> JobRecord | None:
        row = self.db.fetchone(f"{_SELECT} WHERE manager=? AND job_id=?", (manager, job_id))
        return _record(row) if row else None

    def put(self, record: JobRecord) -> JobRecord:
        """Insert or replace a record; a new record gets the next queue sequence number.

        A new record (a new attempt) starts with no uploaded files; the finish time is stamped
        when the state becomes final and cleared when it is not.
        """
        if record.state.is_final != (record.finished is not None):
            record = replace(record, finished=record.updated if record.state.is_final else None)
        with self.db.transaction() as tx:
            if not record.seq:
                (seq,) = tx.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()
                record = replace(record, seq=seq)
                _forget_files(tx, record.manager, record.job_id)
                for forget in self.forget_hooks:
                    forget(tx, record.manager, record.job_id)
            tx.execute(_UPSERT, _row(record))
            if record.state.is_final:
                for hook in self.final_hooks:
                    hook(tx, record)
        return record

    def delete(self, manager: str, job_id: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM jobs WHERE manager=? AND job_id=?", (manager, job_id))
            _forget_files(tx, manager, job_id)
            for forget in self.forget_hooks:
                forget(tx, manager, job_id)

    def in_states(self, manager: str, states: Iterable[JobState]) -> list[JobRecord]:
        """Records of ``manager`` in any of ``states``, oldest submit first (queue order)."""
        values = [state.value for state in states]
        marks = ",".join("?" * len(values))
        rows = self.db.fetchall(
            f"{_SELECT} WHERE manager=? AND state IN ({marks}) ORDER BY seq", (manager, *values)
        )
        return [_record(row) for row in rows]

    def finished_before(self, manager: str, cutoff: float, limit: int = 100) -> list[JobRecord]:
        """Finished records of ``manager`` last changed before ``cutoff`` (for retention)."""
        rows = self.db.fetchall(
            f"{_SELECT} WHERE manager=? AND state IN ({','.join('?' * len(_FINALS))}) "
            "AND updated<? LIMIT ?",
            (manager, *_FINALS, cutoff, limit),
        )
        return [_record(row) for row in rows]

    def count(self, manager: str | None = None) -> int:
        if manager is None:
            (n,) = self.db.fetchone("SELECT COUNT(*) FROM jobs")
        else:
            (n,) = self.db.fetchone("SELECT COUNT(*) FROM jobs WHERE manager=?", (manager,))
        return int(n)

    # -- what the service layer (users, plans, listing) asks ------------------------------

    def record_file(
        self, manager: str, job_id: str, file_type: str, name: str, size: int, replace: bool = True
    ) -> None:
        """Remember an upload into a job (a repeated name replaces the earlier size).

        ``replace=False`` only names a file not recorded yet: a placeholder written after the
        job was submitted must not undo the real size its stage-in may already have recorded.
        """
        conflict = "DO UPDATE SET size = excluded.size" if replace else "DO NOTHING"
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO job_files (manager, job_id, type, name, size) VALUES (?,?,?,?,?) "
                f"ON CONFLICT (manager, job_id, type, name) {conflict}",
                (manager, job_id, file_type, name, size),
            )

    def rename_job(
        self, manager: str, job_id: str, new_id: str, launch: dict[str, Any] | None = None
    ) -> None:
        """Store a job under another id, its files with it, its owner the new id's, and its
        launch record replaced when one is given (a service user's TES task from before
        namespaces moving into theirs: lwr.tes.legacy)."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE jobs SET job_id=?, owner=?, launch=COALESCE(?, launch) "
                "WHERE manager=? AND job_id=?",
                (
                    new_id,
                    namespace.owner_of(new_id) or "",
                    json.dumps(launch) if launch is not None else None,
                    manager,
                    job_id,
                ),
            )
            tx.execute(
                "UPDATE job_files SET job_id=? WHERE manager=? AND job_id=?",
                (new_id, manager, job_id),
            )

    def uploaded_total(self, manager: str, job_id: str, replacing: tuple[str, str]) -> int:
        """Bytes uploaded into a job so far, without the file ``(type, name)`` being replaced."""
        (total,) = self.db.fetchone(
            "SELECT COALESCE(SUM(size), 0) FROM job_files WHERE manager=? AND job_id=? "
            "AND NOT (type=? AND name=?)",
            (manager, job_id, *replacing),
        )
        return int(total)

    def files_of(self, records: Sequence[JobRecord]) -> dict[tuple[str, str], list[FileEntry]]:
        """The uploaded files of each record, keyed by ``(manager, job_id)``, in name order."""
        found: dict[tuple[str, str], list[FileEntry]] = {(r.manager, r.job_id): [] for r in records}
        for manager in sorted({r.manager for r in records}):  # one query per manager: the key
            ids = sorted({r.job_id for r in records if r.manager == manager})
            rows = self.db.fetchall(
                "SELECT job_id, type, name, size FROM job_files "
                f"WHERE manager=? AND job_id IN ({','.join('?' * len(ids))}) ORDER BY type, name",
                (manager, *ids),
            )
            for job_id, file_type, name, size in rows:
                found[(manager, job_id)].append(FileEntry(file_type, name, int(size)))
        return found

    def launched_count(self, owner: str) -> int:
        """How many of ``owner``'s jobs a backend holds now (queued or running, handed over)."""
        (n,) = self.db.fetchone(
            "SELECT COUNT(*) FROM jobs WHERE owner=? AND state IN (?,?) AND launch_state<>?",
            (owner, JobState.QUEUED.value, JobState.RUNNING.value, PENDING),
        )
        return int(n)

    def page(self, query: PageQuery) -> list[JobRecord]:
        """One page of a job listing, newest first (keyset paging on ``seq``: no OFFSET scan)."""
        sql, params = page_statement(query)
        return [_record(row) for row in self.db.fetchall(sql, params)]

    def counts_by_state(self) -> dict[tuple[str, str], int]:
        """(manager, state) -> number of jobs: what /metrics reports, in one grouped query."""
        rows = self.db.fetchall("SELECT manager, state, COUNT(*) FROM jobs GROUP BY manager, state")
        return {(manager, state): int(count) for manager, state, count in rows}

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True)
class FileEntry:
    """One file uploaded into a job."""

    type: str
    name: str
    size: int


@dataclass(frozen=True)
class PageQuery:
    """A listing's filters: ``owner`` None means everyone's jobs ('' the admin token's)."""

    owner: str | None = None
    manager: str | None = None
    states: tuple[str, ...] = ()
    before: int | None = None
    limit: int = 50


def page_statement(query: PageQuery) -> tuple[str, list[Any]]:
    """The SELECT of :meth:`JobStore.page` and its parameters (the bench explains it too)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("owner", query.owner), ("manager", query.manager)):
        if value is not None:
            where.append(f"{column}=?")
            params.append(value)
    if query.states:
        where.append(f"state IN ({','.join('?' * len(query.states))})")
        params.extend(query.states)
    if query.before is not None:
        where.append("seq<?")
        params.append(query.before)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{_SELECT}{clause} ORDER BY seq DESC LIMIT ?", [*params, query.limit]


def _forget_files(tx: Writer, manager: str, job_id: str) -> None:
    tx.execute("DELETE FROM job_files WHERE manager=? AND job_id=?", (manager, job_id))


def _upgrade(tx: Writer, current: int) -> None:
    if current < 3:
        for statement in _UPGRADE_TO_3:
            tx.execute(statement)


def _row(record: JobRecord) -> tuple[Any, ...]:
    return (
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
        record.seq,
        record.created,
        record.updated,
        record.owner or "",
        record.finished,
    )


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
        _owner,
        finished,
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
        finished=finished,
    )
