"""Issue 12: a server that runs many jobs keeps no per-job state in memory once they are cleaned.

The shared-service soak (docs/benchmarks.md) showed the server's RSS climbing; tracemalloc over
2,000 in-process job cycles found no Python-side growth, and the climb followed SQLite's own
heap (one page cache per thread's reader connection). These tests drive the real WSGI app from
the shipped sample through many whole job cycles (setup, upload, submit, status until done,
download, list, clean), by the admin token and by a service user, and count the per-job tables
the suspects keep, which must all be empty afterwards; and they check SQLite's heap is capped.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from paste.deploy import loadapp
from webob import Request

from lwr.persistence import sqlite as lwr_sqlite
from lwr.service import quotas
from tests.integration.server import free_port, write_server_ini

CYCLES = 24
FINAL = {"complete", "failed", "cancelled", "lost"}


class _Client:
    """The app in-process, called as cheroot calls it, one request at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def call(self, method: str, path: str, token: str, body: bytes | None = None) -> bytes:
        request = Request.blank(path, method=method, headers={"Authorization": f"Bearer {token}"})
        if body is not None:
            request.body = body
        response = request.get_response(self.app)
        assert response.status_int == 200, (path, response.status, response.body[:300])
        return bytes(response.body)

    def cycle(self, token: str, job_id: str, clean: bool) -> None:
        setup = json.loads(self.call("POST", f"/jobs?job_id={job_id}", token))
        self.call("POST", f"/jobs/{job_id}/files?name=in.txt&type=input", token, b"x\n" * 50)
        line = f"cat {setup['inputs_directory']}/in.txt > {setup['outputs_directory']}/out.txt"
        self.call("POST", f"/jobs/{job_id}/submit?command_line={quote(line)}", token)
        deadline = time.monotonic() + 60
        while json.loads(self.call("GET", f"/jobs/{job_id}/status", token))["status"] not in FINAL:
            assert time.monotonic() < deadline, f"job {job_id} did not end"
            time.sleep(0.02)
        assert self.call("GET", f"/jobs/{job_id}/files?name=out.txt&type=output", token)
        self.call("GET", "/jobs?limit=20", token)
        if clean:
            self.call("DELETE", f"/jobs/{job_id}", token)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The sample's app with an admin token and a queued_python manager, after many jobs."""
    directory = tmp_path_factory.mktemp("memleak")
    admin = secrets.token_urlsafe(16)
    write_server_ini(directory, free_port(), {"private_token": admin})
    (directory / "job_managers.ini").write_text(
        "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 2\n"
    )
    wsgi = loadapp(f"config:{directory / 'server.ini'}")
    client = _Client(wsgi)
    user = json.loads(client.call("POST", "/users?name=soak", admin))["token"]
    for n in range(CYCLES):
        client.cycle(user if n % 2 else admin, f"soak{n:04d}", clean=n % 4 != 3)
    yield wsgi.app
    wsgi.app.stop()


def test_no_per_job_entries_left(served: Any) -> None:
    """Upload locks, run-time starts and the local waiter's children are gone with the jobs."""
    assert quotas._JOBS._held == {}
    if served.metrics is not None:
        assert served.metrics._started == {}
    for manager in served.managers.values():
        assert getattr(manager.backend, "_children", {}) == {}


def test_reader_connections_are_per_thread_not_per_job(served: Any) -> None:
    """One SQLite reader per thread that read (a handful here), never one per job or request."""
    assert 0 < len(served.store.db._readers) < CYCLES // 2


def test_sqlite_heap_is_capped(tmp_path: Path) -> None:
    """LWR's connections set SQLite's process-wide soft heap limit, so page caches stop growing."""
    lwr_sqlite.connect(tmp_path / "a.sqlite3").close()
    other = sqlite3.connect(tmp_path / "b.sqlite3")
    try:
        limit = other.execute("PRAGMA soft_heap_limit").fetchone()[0]
    finally:
        other.close()
    assert limit == lwr_sqlite.HEAP_LIMIT > 0
