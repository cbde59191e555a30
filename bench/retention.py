"""How long a retention pass takes with 100,000 finished jobs in the store (SQLite or PostgreSQL).

``python -m bench.retention [--jobs N] [--database-url postgresql://...]`` fills a fresh store
the way :mod:`bench.listing` does (one premium user owning half the jobs, 100 free users most of
the rest, the admin token's Galaxy jobs; 93 % of them finished), gives every finished user's job
its ``retention`` row as the worker would have (the free users' past their 10 minutes
archived, the premium user's hot forever), then times :meth:`RetentionWorker.run_once`, a whole
pass of the server's worker:

* **idle**: nothing new happened since the last pass (the steady state; median of 20);
* **100 new**: 100 jobs of a free user reached a final state through ``JobStore.put`` since the
  last pass, as the server's monitor writes them (median of 5 such passes).

Then it measures what an upgrade of a database from before the ``retention_inbox`` costs: a
second store filled the same way but without retention rows is opened (the migration queues
every finished job of a user) and the worker's intake drains that queue (``--upgrade-only``
measures just that). Besides wall-clock seconds it gives the CPU seconds of this process and,
on a PostgreSQL server on this host, of the store's server processes (read from /proc): on a
shared machine those move less with the load than wall-clock time does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.listing import fill
from lwr.managers.base import JobState
from lwr.managers.directory import JobDirectory
from lwr.persistence.store import JobRecord, JobStore
from lwr.service.plans import Plans
from lwr.service.retention.settings import RetentionConfig
from lwr.service.retention.worker import RetentionWorker
from lwr.service.users import Users

PREMIUM, FREE_USERS = "heavy", [f"user{n:02d}" for n in range(100)]


def users_of(store: JobStore) -> Users:
    users = Users(store, Plans())
    users.rows.insert(PREMIUM, "premium", "digest-heavy")
    for name in FREE_USERS:
        users.rows.insert(name, "free", f"digest-{name}")
    return users


def worker_for(store: JobStore, users: Users, scratch: Path) -> RetentionWorker:
    config = RetentionConfig(directory_option=scratch / "archive")
    jobs = scratch / "jobs"
    worker = RetentionWorker(
        store, users, config, lambda m, j: JobDirectory(jobs / m / j), scratch / "work"
    )
    worker.scratch.mkdir(exist_ok=True)
    return worker


def settled_rows(store: JobStore, now: float) -> int:
    """Every finished user's job gets the row the worker would have given it, and the free
    users' jobs past their deadline are archived (bulk SQL: what months of passes leave)."""
    with store.db.transaction() as tx:
        # the fill's newest jobs finish "now": an hour earlier, none falls due mid-bench
        tx.execute(
            "UPDATE jobs SET created=created-3600, updated=updated-3600, finished=finished-3600"
        )
        tx.execute(
            "INSERT INTO retention (manager, job_id, seq, owner, finished, hot_until, status, "
            "updated) SELECT manager, job_id, seq, owner, finished, "
            "CASE WHEN owner=? THEN NULL ELSE finished + 600 END, 'hot', ? FROM jobs "
            "WHERE owner<>'' AND finished IS NOT NULL",
            (PREMIUM, now),
        )
        tx.execute(
            "UPDATE retention SET status='archived', archive_id=manager || '/' || job_id "
            "WHERE hot_until IS NOT NULL AND hot_until<=?",
            (now,),
        )
    analyze(store)
    (rows,) = store.db.fetchone("SELECT COUNT(*) FROM retention")
    return int(rows)


def analyze(store: JobStore) -> None:
    if store.db.dialect == "postgresql":  # fresh statistics, as autovacuum would soon gather
        with store.db.transaction() as tx:
            tx.execute("ANALYZE")


def timed_passes(worker: RetentionWorker, store: JobStore) -> dict[str, Any]:
    worker.run_once()  # warm caches (and any leftovers)
    idle = []
    for _ in range(20):
        start = time.perf_counter()
        did = worker.run_once()
        idle.append((time.perf_counter() - start) * 1000)
        assert did == 0, f"an idle pass did {did} things"
    new = []
    for batch in range(5):
        for n in range(100):
            job = JobRecord("_default_", f"user05~new{batch}-{n}", state=JobState.RUNNING)
            job = store.put(job)
            store.put(job.evolve(state=JobState.COMPLETE, return_code=0))
        start = time.perf_counter()
        did = worker.run_once()
        new.append((time.perf_counter() - start) * 1000)
        assert did >= 100, f"a pass after 100 new jobs did {did} things"
    return {
        "idle_pass_ms": round(statistics.median(idle), 1),
        "idle_pass_max_ms": round(max(idle), 1),
        "pass_after_100_new_ms": round(statistics.median(new), 1),
    }


def upgrade(jobs: int, database_url: str | None) -> dict[str, Any]:
    """A database from before the inbox: jobs finished, no retention tables yet."""
    with tempfile.TemporaryDirectory(prefix="lwr-bench-retention-up-") as scratch:
        store = JobStore(Path(scratch), database_url)
        try:
            users = users_of(store)
            fill(store, jobs, seed=13)
            start = time.perf_counter()
            worker = worker_for(store, users, Path(scratch))  # creates the tables: migration
            migrated = time.perf_counter() - start
            (queued,) = store.db.fetchone("SELECT COUNT(*) FROM retention_inbox")
            backends = server_processes(store)
            server_before = cpu_seconds(backends)
            start, cpu_start = time.perf_counter(), time.process_time()
            batches = 0
            while worker.take_changes(time.time()):
                batches += 1
            drained = time.perf_counter() - start
            client_cpu = time.process_time() - cpu_start
            server_cpu = cpu_seconds(backends) - server_before if backends else None
            (rows,) = store.db.fetchone("SELECT COUNT(*) FROM retention")
        finally:
            store.close()
            if database_url:
                _empty(database_url)
    return {
        "migration_s": round(migrated, 2),
        "queued_by_migration": int(queued),
        "intake_s": round(drained, 1),
        "intake_batches": batches,
        "intake_client_cpu_s": round(client_cpu, 1),
        "intake_server_cpu_s": None if server_cpu is None else round(server_cpu, 1),
        "rows_after": int(rows),
    }


def server_processes(store: JobStore) -> list[int]:
    """The PostgreSQL server processes of the store's connections (writer and this thread's
    reader) when they run on this host and /proc shows them; else none."""
    if store.db.dialect != "postgresql":
        return []
    with store.db.transaction() as tx:
        (writer,) = tx.execute("SELECT pg_backend_pid()").fetchone()
    (reader,) = store.db.fetchone("SELECT pg_backend_pid()")
    pids = [int(writer), int(reader)]
    return pids if all(Path(f"/proc/{pid}/stat").exists() for pid in pids) else []


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (fields 14 and 15 of /proc/PID/stat)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _empty(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (emptied after)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--upgrade-only", action="store_true", help="measure only the upgrade's catch-up"
    )
    args = parser.parse_args(argv)
    if args.upgrade_only:
        return _print({"upgrade": upgrade(args.jobs, args.database_url)}, args.json)
    with tempfile.TemporaryDirectory(prefix="lwr-bench-retention-") as scratch:
        store = JobStore(Path(scratch), args.database_url)
        try:
            if store.count():
                raise SystemExit("the store is not empty: give a scratch database")
            users = users_of(store)
            worker = worker_for(store, users, Path(scratch))
            fill(store, args.jobs)
            rows = settled_rows(store, time.time())
            document: dict[str, Any] = {
                "database": store.db.dialect,
                "jobs": store.count(),
                "retention_rows": rows,
                **timed_passes(worker, store),
            }
        finally:
            store.close()
            if args.database_url:
                _empty(args.database_url)
    document["upgrade"] = upgrade(args.jobs, args.database_url)
    return _print(document, args.json)


def _print(document: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(document, indent=2))
    else:
        for key, value in document.items():
            print(f"{key:28s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
