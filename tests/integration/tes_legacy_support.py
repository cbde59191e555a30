"""What the TES upgrade tests share: a database's rows made as the release before namespaces
left them (:class:`Rows`), on SQLite or PostgreSQL, and waiting for a task's state.

Used by tests/integration/test_tes_upgrade.py (the upgrade) and
tests/integration/test_tes_legacy_crash.py (the upgrade killed at each of its steps).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import tes

UNFINISHED = ("QUEUED", "INITIALIZING", "RUNNING")
#: the tables of the release before namespaces (``lwr_schema`` naming ``service_users`` only)
OLD_TABLES = ("jobs", "job_files", "service_users", "lwr_schema")


def wait_task(client: tes.HTTPClient, task_id: str, states: tuple[str, ...] = UNFINISHED) -> Any:
    """The task (FULL view) once its state is none of ``states``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = client.get_task(task_id, view="FULL")
        if found.state not in states:
            return found
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} still {found.state}")


class Rows:
    """The job store's rows, read and written as the old release left them (SQLite or PG)."""

    def __init__(self, directory: Path, url: str | None) -> None:
        self.directory, self.url = directory, url

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self.url:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as db:
                cursor = db.execute(sql.replace("?", "%s"), params)
                return list(cursor.fetchall()) if cursor.description else []
        import sqlite3

        db = sqlite3.connect(self.directory / "files" / "persisted_data" / "jobs.sqlite3")
        try:
            with db:
                return list(db.execute(sql, params).fetchall())
        finally:
            db.close()

    def make_old(self, job_id: str, user: str) -> None:
        """What the release before namespaces stored for ``user``'s task ``job_id``."""
        ((launch,),) = self.execute("SELECT launch FROM jobs WHERE job_id=?", (job_id,))
        document = json.loads(launch)
        document["tes"]["owner"] = f"user:{user}"
        del document["tes"]["job"]
        self.execute("UPDATE jobs SET launch=? WHERE job_id=?", (json.dumps(document), job_id))
        self.execute("DELETE FROM job_files WHERE job_id=?", (job_id,))

    def forget_newer_tables(self) -> None:
        """Drop what that release's database did not have (it had these tables only)."""
        listing = (
            "SELECT tablename FROM pg_tables WHERE schemaname='public'"
            if self.url
            else "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
        for (name,) in self.execute(listing):
            if name not in OLD_TABLES:
                self.execute(f"DROP TABLE {name}")
        self.execute("DELETE FROM lwr_schema WHERE name<>'service_users'")
