"""The worker's intake: what the inbox says changed, turned into ``retention`` rows.

The job store's hooks mark a job in ``retention_inbox`` in the very transaction that makes a
user's job final, deletes a job or starts a new attempt of it (:mod:`.table`). Each pass reads
a batch of marked jobs joined with their current attempt and row, so its cost follows what
changed since the last pass, not how many jobs the store holds (the scan it replaces read every
finished job, and every row, at each pass). The worker drops rows of attempts that are gone
(their archives with them), then :meth:`Intake.adopt` gives newly finished jobs their rows and
takes the handled entries out, in one transaction per batch, a few statements per batch.

Every statement here reaches ``jobs``, ``retention`` and ``retention_inbox`` one key at a time,
through their primary keys (a scalar subquery or a lateral join per key), never through
``job_id IN (...)``. Why: after an upgrade the catch-up fills ``retention`` from empty with
tens of thousands of rows within minutes, before PostgreSQL has statistics for it (autovacuum
gathers them a minute later at best, never when it is off). Without them the planner guesses
that ``manager=?`` matches a few rows and reads every row of the manager through the primary
key's first column, testing ``job_id`` against the list as a filter; once psycopg prepares
the statement (its fifth run) the generic plan's list is an array of parameters, which
PostgreSQL compares one by one: 500 comparisons per row, batches slowing as the table grows
(2 s per batch at 80,000 rows; a 100,000-job catch-up took minutes). A probe per key costs
the same with or without statistics, custom or generic plan (see docs/service.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from lwr.persistence.database import Writer
from lwr.service.retention import policy
from lwr.service.retention.table import Kept, RetentionTable

#: entries a pass takes at most (several passes follow at once while there are more)
BATCH = 500


def changes_sql(limit: int) -> str:
    """The inbox's entries, with the job's current attempt and the row it has (None: none).

    The limit is written into the statement, not bound: a generic plan's ``LIMIT $1`` is
    planned for a tenth of the inbox, which can turn the join with ``jobs`` into a hash join
    reading every job.
    """
    return (
        "SELECT i.manager, i.job_id, i.version, j.seq, j.owner, j.finished, "
        "(SELECT r.seq FROM retention r WHERE r.manager=i.manager AND r.job_id=i.job_id) "
        f"FROM (SELECT manager, job_id, version FROM retention_inbox LIMIT {int(limit)}) i "
        "LEFT JOIN jobs j ON j.manager=i.manager AND j.job_id=i.job_id"
    )


def _keys(count: int) -> str:
    """The job ids of one manager's batch, as a table ``k(job_id)``."""
    return f"WITH k(job_id) AS (VALUES {','.join(['(?)'] * count)}) "


def current_jobs_sql(count: int, dialect: str) -> str:
    """The batch's jobs (attempt, finish time), locked on PostgreSQL: a lateral probe per key
    (a plain join could be planned as a hash join reading every job)."""
    if dialect == "postgresql":
        return _keys(count) + (
            "SELECT k.job_id, j.seq, j.finished FROM k CROSS JOIN LATERAL "
            "(SELECT seq, finished FROM jobs WHERE manager=? AND job_id=k.job_id FOR UPDATE) j"
        )
    return _keys(count) + (
        "SELECT k.job_id, j.seq, j.finished FROM k JOIN jobs j ON j.manager=? AND j.job_id=k.job_id"
    )


def current_rows_sql(count: int) -> str:
    """The batch's retention rows' attempts and inbox entries' versions (None: none)."""
    return _keys(count) + (
        "SELECT k.job_id, "
        "(SELECT r.seq FROM retention r WHERE r.manager=? AND r.job_id=k.job_id), "
        "(SELECT i.version FROM retention_inbox i WHERE i.manager=? AND i.job_id=k.job_id) "
        "FROM k"
    )


@dataclass(frozen=True)
class Change:
    """An inbox entry: a job whose retention may have to change, as it stood when read."""

    manager: str
    job_id: str
    version: int
    #: the job's current attempt (None: the job is gone), its owner and finish time
    seq: int | None
    owner: str | None
    finished: float | None
    #: the attempt the job's retention row belongs to (None: no row)
    kept_seq: int | None

    @property
    def stale(self) -> bool:
        """The row belongs to an attempt that is gone (cleaned, expired, set up again)."""
        return self.kept_seq is not None and self.kept_seq != self.seq

    @property
    def unseen(self) -> bool:
        """A finished attempt of a user's job without its row yet."""
        return (
            self.seq is not None
            and bool(self.owner)
            and self.finished is not None
            and self.kept_seq != self.seq
        )


class Intake:
    """Reads the inbox and adopts what it names; ``retention_of(owner)`` gives plan minutes."""

    def __init__(self, table: RetentionTable, retention_of: Callable[[str], float | None]) -> None:
        self.table = table
        self.retention_of = retention_of

    def changes(self, limit: int = BATCH) -> list[Change]:
        """Inbox entries to handle (the worker drops stale rows, then :meth:`adopt`)."""
        return [Change(*row) for row in self.table.db.fetchall(changes_sql(limit))]

    def adopt(self, changes: list[Change], now: float) -> int:
        """Give each newly finished job of a user its row and its deadline (the plan's now),
        and take the handled entries out of the inbox, in one transaction; returns how many.

        Everything is read again inside the transaction: an entry whose job still has the row
        of a gone attempt stays (the worker drops that row first, at its next pass); a job
        cleaned or set up again since it was read gets no row; an entry marked again since
        stays for the next pass. On PostgreSQL the jobs' rows are locked while this runs, so a
        clean committing at the same time on another server is either seen here or sees the
        new row (and its forget hook marks the job again); SQLite's one writer serialises both.
        """
        handled = 0
        minutes: dict[str, float | None] = {}
        with self.table.db.transaction() as tx:
            for manager, group in groupby(sorted(changes, key=_key), key=lambda c: c.manager):
                batch = list(group)
                now_jobs, rows, versions = self._current(tx, manager, [c.job_id for c in batch])
                adopted: list[Kept] = []
                done: list[tuple[str, str, int]] = []
                for change in batch:
                    row_seq = rows.get(change.job_id)
                    if row_seq is not None and row_seq != change.seq:
                        continue  # the row of a gone attempt: dropped first
                    current = now_jobs.get(change.job_id)
                    if change.unseen and row_seq is None and current == (change.seq, True):
                        owner = str(change.owner)
                        if owner not in minutes:
                            minutes[owner] = self.retention_of(owner)
                        adopted.append(_kept(change, minutes[owner], now))
                    if versions.get(change.job_id) == change.version:
                        done.append((manager, change.job_id, change.version))
                self.table.adopt_all(tx, adopted)
                if done:
                    tx.executemany(
                        "DELETE FROM retention_inbox WHERE manager=? AND job_id=? AND version=?",
                        done,
                    )
                handled += len(done)
        return handled

    def _current(
        self, tx: Writer, manager: str, ids: list[str]
    ) -> tuple[dict[str, tuple[int, bool]], dict[str, int], dict[str, int]]:
        """The jobs' attempts (and whether finished), their rows' attempts, the entries'
        versions, read (and the jobs locked, on PostgreSQL) in ``tx``."""
        dialect = self.table.db.dialect
        jobs = tx.execute(current_jobs_sql(len(ids), dialect), (*ids, manager)).fetchall()
        rows = tx.execute(current_rows_sql(len(ids)), (*ids, manager, manager)).fetchall()
        return (
            {job_id: (int(seq), finished is not None) for job_id, seq, finished in jobs},
            {job_id: int(seq) for job_id, seq, _ in rows if seq is not None},
            {job_id: int(version) for job_id, _, version in rows if version is not None},
        )


def _key(change: Change) -> str:
    return change.manager


def _kept(change: Change, minutes: float | None, now: float) -> Kept:
    assert change.seq is not None and change.owner and change.finished is not None
    return Kept(
        change.manager,
        change.job_id,
        change.seq,
        change.owner,
        change.finished,
        policy.hot_until(change.finished, minutes),
        updated=now,
    )
