"""Retention's inbox on SQLite and PostgreSQL: what changed reaches the worker through rows the
job store's own transactions write (never a scan of every job), an entry marked again while the
worker handles it is kept, and a database from before the inbox (or from before retention) has
its finished jobs archived and its stale rows dropped after the upgrade.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from lwr.managers.base import JobState
from lwr.managers.directory import JobDirectory
from lwr.persistence.store import JobRecord, JobStore
from lwr.service.retention import intake, worker
from lwr.service.retention import table as retention_table
from lwr.service.retention.settings import RetentionConfig
from lwr.service.retention.table import ARCHIVED, Kept
from lwr.service.users import Users
from tests.integration.postgres import scratch_database
from tests.integration.test_retention_worker import (
    KEPT,
    PLANS,
    contents,
    finished_job,
    settle,
    world,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

__all__ = ["world"]  # the fixture, shared with test_retention_worker


def inbox(store: JobStore) -> list[tuple[str, str]]:
    rows = store.db.fetchall("SELECT manager, job_id FROM retention_inbox ORDER BY job_id")
    return [(m, j) for m, j in rows]


def test_final_states_of_users_jobs_are_written_to_the_inbox(world: dict[str, Any]) -> None:
    store = world["store"]
    running = store.put(JobRecord("m", "alice~1", state=JobState.RUNNING))
    store.put(JobRecord("m", "galaxy", state=JobState.RUNNING))
    assert inbox(store) == []
    store.put(running.evolve(state=JobState.COMPLETE))
    store.put(JobRecord("m", "galaxy", state=JobState.COMPLETE))  # the admin's: no retention
    assert inbox(store) == [("m", "alice~1")]
    world["worker"].take_changes(time.time())
    assert inbox(store) == [] and world["worker"].table.get("m", "alice~1") is not None


def test_a_failed_final_transaction_leaves_no_entry(world: dict[str, Any]) -> None:
    store = world["store"]
    running = store.put(JobRecord("m", "alice~2", state=JobState.RUNNING))

    def broken(tx: Any, record: JobRecord) -> None:
        raise RuntimeError("the transaction fails after the inbox's hook")

    store.final_hooks.append(broken)
    with pytest.raises(RuntimeError):
        store.put(running.evolve(state=JobState.COMPLETE))
    store.final_hooks.remove(broken)
    assert inbox(store) == [] and store.get("m", "alice~2").state == JobState.RUNNING


def test_a_job_cleaned_while_its_entry_is_handled_gets_no_row(world: dict[str, Any]) -> None:
    retention, store = world["worker"], world["store"]
    finished_job(world, "alice~3")
    changes = retention.intake.changes()
    store.delete("m", "alice~3")  # ... after the worker read its entry, before it adopts
    retention.intake.adopt(changes, time.time())
    assert retention.table.get("m", "alice~3") is None and inbox(store) == []


def test_an_entry_marked_again_while_handled_stays(world: dict[str, Any]) -> None:
    retention, store = world["worker"], world["store"]
    first = finished_job(world, "alice~4")
    changes = retention.intake.changes()
    again = store.put(JobRecord("m", "alice~4", state=JobState.RUNNING))  # set up again...
    store.put(again.evolve(state=JobState.FAILED))  # ... and finished: marked again
    assert again.seq != first.seq
    assert retention.intake.adopt(changes, time.time()) == 0
    assert inbox(store) == [("m", "alice~4")]
    settle(retention)
    assert inbox(store) == [] and retention.table.get("m", "alice~4").seq == again.seq


def test_an_idle_pass_reads_no_job(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement of a pass with nothing new names neither ``jobs`` alone nor scans it:
    the only query touching ``jobs`` is the inbox's join, which an empty inbox leaves empty."""
    retention, store = world["worker"], world["store"]
    for n in range(5):
        finished_job(world, f"alice~idle{n}")
    settle(retention)
    seen: list[str] = []
    fetchall = store.db.fetchall

    def spy(sql: str, params: Any = ()) -> Any:
        seen.append(sql)
        return fetchall(sql, params)

    monkeypatch.setattr(store.db, "fetchall", spy)
    assert retention.run_once() == 0
    touching_jobs = [sql for sql in seen if " jobs " in f"{sql} "]
    assert touching_jobs == [intake.changes_sql(intake.BATCH)]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    context = (
        scratch_database("lwr_retention_up") if request.param == "postgresql" else nullcontext()
    )
    with context as url:
        store = JobStore(tmp_path / "state", url)
        yield store
        store.close()


@pytest.mark.parametrize("before", ["retention v1", "no retention tables"])
def test_jobs_finished_before_the_upgrade_are_still_archived(
    old_store: JobStore, tmp_path: Path, before: str
) -> None:
    store, jobs = old_store, tmp_path / "jobs"
    users = Users(store, PLANS)
    users.add("alice")
    config = RetentionConfig(directory_option=tmp_path / "archive", scan_interval=0.1)
    stale_archive = tmp_path / "archive" / "m" / "alice" / "gone.1.tar.gz"
    if before == "retention v1":
        # what the previous release left: its table (no inbox), a row whose job is gone since
        store.db.migrate("retention", retention_table._SCHEMA, 1)
        gone = Kept("m", "alice~gone", 1, "alice", time.time() - 3600, 0.0, ARCHIVED)
        with store.db.transaction() as tx:
            retention_table.RetentionTable.adopt(None, tx, gone)  # type: ignore[arg-type]
            tx.execute("UPDATE retention SET archive_id='m/alice/gone.1'")
        stale_archive.parent.mkdir(parents=True)
        stale_archive.write_bytes(b"an old archive")
    world_ = {"store": store, "jobs": jobs}
    for n in range(3):  # finished before the upgrade: no hook saw them
        finished_job(world_, f"alice~before{n}")
    assert store.db.fetchone("SELECT COUNT(*) FROM jobs")[0] == 3
    retention = worker.RetentionWorker(
        store, users, config, lambda m, j: JobDirectory(jobs / m / j), tmp_path / "scratch"
    )
    retention.scratch.mkdir()
    assert len(inbox(store)) == (4 if before == "retention v1" else 3)  # queued by the upgrade
    settle(retention)
    for n in range(3):
        assert retention.table.get("m", f"alice~before{n}").status == ARCHIVED
        assert contents(jobs / "m" / f"alice~before{n}") == KEPT
    assert retention.table.get("m", "alice~gone") is None and not stale_archive.exists()
    assert inbox(store) == []


#: tables the catch-up reads; each statement may examine a row of each per key, no more
_CATCH_UP_TABLES = {"jobs", "retention", "retention_inbox"}


def test_catch_up_statements_probe_each_key_without_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At an upgrade the catch-up fills ``retention`` before PostgreSQL has statistics for it.
    Each statement of a catch-up batch, replayed with EXPLAIN ANALYZE in a custom and in a
    generic plan (psycopg prepares a statement at its fifth run), examines at most one row
    of each table per key: never the whole ``retention`` table, which made every batch slower
    than the last (``job_id IN (...)`` planned as a scan of the manager's rows)."""
    import psycopg
    from psycopg import sql

    jobs, batch = 6 * intake.BATCH, intake.BATCH
    with scratch_database("lwr_retention_plans") as url:
        store = JobStore(tmp_path / "state", url)
        try:
            _no_statistics(store, "jobs")
            with store.db.transaction() as tx:  # jobs finished before the inbox existed
                tx.execute(
                    "INSERT INTO jobs (manager, job_id, attempt, state, launch_state, seq, "
                    "created, updated, owner, finished) SELECT 'm', 'alice~' || n, 1, "
                    "'complete', 'launched', n, 1.0, 2.0, 'alice', 2.0 "
                    "FROM generate_series(1, ?) AS n",
                    (jobs,),
                )
            users = Users(store, PLANS)
            users.add("alice")
            config = RetentionConfig(directory_option=tmp_path / "archive")
            retention = worker.RetentionWorker(  # the upgrade: the inbox, the catch-up queued
                store, users, config, lambda m, j: JobDirectory(tmp_path / m / j), tmp_path
            )
            _no_statistics(store, "retention", "retention_inbox")
            while len(inbox(store)) > batch:  # all but the last batch taken in
                retention.take_changes(time.time())
            seen: list[tuple[str, tuple[Any, ...]]] = []
            for owner, name in ((store.db, "fetchall"), (type(store.db), "transaction")):
                _spy(monkeypatch, owner, name, seen)
            assert retention.take_changes(time.time()) == batch
        finally:
            store.close()
        reads = [(s, p) for s, p in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]
        assert len(reads) >= 3, reads  # the batch, its jobs, its rows and entries (at least)
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as db:
            for statement, params in reads:
                numbered = _numbered(statement)
                for mode in ("force_custom_plan", "force_generic_plan"):
                    db.execute(f"SET plan_cache_mode = {mode}")
                    db.execute(f"PREPARE q AS {numbered}")  # type: ignore[call-overload]
                    values = sql.SQL(",").join(sql.Literal(p) for p in params)
                    arguments = sql.SQL("({})").format(values) if params else sql.SQL("")
                    explain = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE q{}").format(
                        arguments
                    )
                    with db.transaction(force_rollback=True):
                        ((plan,),) = db.execute(explain).fetchall()
                    db.execute("DEALLOCATE q")
                    examined = _examined(plan[0]["Plan"])
                    assert examined and max(examined.values()) <= batch, (mode, statement, examined)


def _no_statistics(store: JobStore, *tables: str) -> None:
    """Keep autovacuum from gathering statistics for ``tables``, whatever the server's
    settings: the planner sees them as a fresh upgrade's catch-up does."""
    with store.db.transaction() as tx:
        for table in tables:
            tx.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")


def _spy(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, seen: list[tuple[str, Any]]
) -> None:
    """Record every statement (and its parameters) the reader's ``fetchall`` or a
    transaction's ``execute`` runs."""
    original = getattr(owner, name)
    if name == "fetchall":

        def fetchall(statement: str, params: Any = ()) -> Any:
            seen.append((statement, tuple(params)))
            return original(statement, params)

        monkeypatch.setattr(owner, name, fetchall)
        return

    from contextlib import contextmanager

    @contextmanager
    def transaction(self: Any) -> Iterator[Any]:
        with original(self) as tx:
            execute = tx.execute

            def recorded(statement: str, params: Any = ()) -> Any:
                seen.append((statement, tuple(params)))
                return execute(statement, params)

            tx.execute = recorded
            yield tx

    monkeypatch.setattr(owner, name, transaction)


def _numbered(statement: str) -> str:
    """``?`` placeholders as PREPARE's ``$1, $2, ...`` (the store's SQL has no ``?`` else)."""
    parts = statement.split("?")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1))


def _examined(node: dict[str, Any], found: dict[str, int] | None = None) -> dict[str, int]:
    """Rows each catch-up table's scans read (returned or filtered out), over all loops."""
    found = {} if found is None else found
    table = node.get("Relation Name")
    if table in _CATCH_UP_TABLES:
        rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        rows += node.get("Rows Removed by Index Recheck", 0)
        found[table] = found.get(table, 0) + rows * node["Actual Loops"]
    for child in node.get("Plans", []):
        _examined(child, found)
    return found
