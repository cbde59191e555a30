"""How fast a job listing is with 100,000 jobs in the store (SQLite, or PostgreSQL).

``python -m bench.listing [--jobs N] [--database-url postgresql://...]`` fills a fresh store with
N jobs (one heavy user owning half of them, 100 light users sharing most of the rest, the admin
token's Galaxy jobs, realistic states, two uploaded files each), then times
:func:`lwr.service.listing.list_jobs` (the very function behind ``GET /jobs``: the page query,
the files query and the JSON-able answer) for first pages, filtered pages and a deep page.
Median of 20 runs per case, warm caches; the query plans SQLite chose are printed too.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lwr.persistence.store import _COLUMNS, JobStore, PageQuery, page_statement
from lwr.service import listing

STATES = [
    ("complete", 0.90),
    ("failed", 0.02),
    ("cancelled", 0.01),
    ("running", 0.03),
    ("queued", 0.04),
]


def owner_of(n: int, jobs: int) -> str:
    if n % 2 == 0:
        return "heavy"
    if n % 10 == 1:
        return ""  # the admin token's (Galaxy's) jobs
    return f"user{n % 100:02d}"


def fill(store: JobStore, jobs: int, seed: int = 12) -> None:
    """N jobs and 2N file rows in a few large transactions (bulk insert, not one put per job)."""
    rng = random.Random(seed)
    names, weights = zip(*STATES, strict=True)
    now = time.time() - jobs
    batch, files = [], []
    for n in range(1, jobs + 1):
        owner = owner_of(n, jobs)
        job_id = f"{owner}~{n}" if owner else str(n)
        state = rng.choices(names, weights)[0]
        final = state in ("complete", "failed", "cancelled")
        created = now + n
        batch.append(
            (
                "_default_",
                job_id,
                1,
                state,
                "launched",
                str(n),
                None,
                None,
                0 if final else None,
                json.dumps({"setup": {"tool_id": "cat1"}}),
                n,
                created,
                created + 30,
                owner,
                created + 30 if final else None,
            )
        )
        files.append(("_default_", job_id, "input", "dataset_1.dat", rng.randint(1, 150_000)))
        files.append(("_default_", job_id, "config", "args", 12))
        if len(batch) >= 10_000 or n == jobs:
            with store.db.transaction() as tx:
                tx.executemany(
                    f"INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch
                )
                tx.executemany("INSERT INTO job_files VALUES (?,?,?,?,?)", files)
            batch, files = [], []
    if store.db.dialect == "postgresql":  # fresh statistics, as autovacuum would soon gather
        with store.db.transaction() as tx:
            tx.execute("ANALYZE jobs")
            tx.execute("ANALYZE job_files")


def timed(store: JobStore, query: PageQuery, runs: int = 20) -> dict[str, Any]:
    samples, page = [], None
    for _ in range(runs):
        start = time.perf_counter()
        page = listing.list_jobs(store, query, show_owner=query.owner is None)
        samples.append((time.perf_counter() - start) * 1000)
    assert page is not None
    return {
        "median_ms": round(statistics.median(samples), 2),
        "max_ms": round(max(samples), 2),
        "jobs": len(page["jobs"]),
    }


def cases(store: JobStore) -> dict[str, PageQuery]:
    """The pages a dashboard and a client ask for."""
    heavy = PageQuery(owner="heavy")
    before = None
    for _ in range(99):  # to page 100 of the heavy user's jobs, a page at a time
        before = store.page(PageQuery(owner="heavy", before=before))[-1].seq
    return {
        "user with 50% of jobs, first page": heavy,
        "same user, state=failed (2%)": PageQuery(owner="heavy", states=("failed",)),
        "same user, state=running,queued": PageQuery(owner="heavy", states=("queued", "running")),
        "same user, page 100 (keyset)": PageQuery(owner="heavy", before=before),
        "light user (~440 jobs), first page": PageQuery(owner="user07"),
        "admin, everyone, first page": PageQuery(),
        "admin, everyone, state=failed": PageQuery(states=("failed",)),
        "admin, one manager, first page": PageQuery(manager="_default_"),
    }


def plans(store: JobStore, queries: dict[str, PageQuery]) -> dict[str, list[str]]:
    """SQLite's query plan of each page query (which index it walks)."""
    if store.db.dialect != "sqlite":
        return {}
    found = {}
    for name, query in queries.items():
        sql, params = page_statement(query)
        rows = store.db.fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
        found[name] = [row[-1] for row in rows]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (emptied first)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lwr-bench-listing-") as scratch:
        store = JobStore(Path(scratch), args.database_url)
        try:
            if store.count():
                raise SystemExit("the store is not empty: give a scratch database")
            start = time.perf_counter()
            fill(store, args.jobs)
            filled = time.perf_counter() - start
            queries = cases(store)
            results = {name: timed(store, query) for name, query in queries.items()}
            document = {
                "database": store.db.dialect,
                "jobs": store.count(),
                "fill_seconds": round(filled, 1),
                "pages": results,
                "sqlite_plans": plans(store, queries),
            }
        finally:
            store.close()
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(f"{document['jobs']} jobs on {document['database']} (filled in {filled:.1f}s)")
    for name, result in results.items():
        print(f"  {name:40s} {result['median_ms']:8.2f} ms median  ({result['jobs']} jobs)")
    for name, steps in document["sqlite_plans"].items():
        print(f"  plan {name}: {'; '.join(steps)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
