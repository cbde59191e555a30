"""Retention end to end: a real server (``paster serve server.ini``) archives a user's results
after the plan's retention time, answers 409 for them, restores them when the admin upgrades the
user (``lwr users set-plan``, another process: its plan listener queues the restores in the
database, the server's worker performs them), and survives ``kill -9`` mid-archive and
mid-restore.

The kills are real SIGKILLs of the server process at a precise moment: the server is started
with ``LWR_TEST_RETENTION_CRASH_AT`` (a test-only hook, inert without the variable) and kills
itself with SIGKILL there; the test then restarts it without the variable. The plan ``free``
keeps results 0.02 minutes here, and the worker scans every 0.3 s.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from tests.integration.postgres import scratch_database
from tests.integration.server import BIN, LwrServer, free_port, write_server_ini

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

ADMIN = "admin-token"
PLANS = "free: {retention_minutes: 0.02}\npremium: {retention_minutes: forever}\n"
CRASH = "LWR_TEST_RETENTION_CRASH_AT"


class Service:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server = LwrServer(directory, free_port())
        self.tokens: dict[str, str] = {}

    def users(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(BIN / "lwr"), "users", "--json", *args],
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def call(self, who: str, method: str, path: str, **params: Any) -> tuple[int, Any]:
        return self.server.request(method, path, {**params, "private_token": self.tokens[who]})

    def run(self, who: str, job_id: str, text: str) -> None:
        status, answer = self.call(who, "POST", "jobs", job_id=job_id)
        assert status == 200, answer
        line = f"printf '{text}' > {answer['outputs_directory']}/out.txt; echo logged"
        status, body = self.call(who, "POST", f"jobs/{job_id}/submit", command_line=line)
        assert status == 200, body

    def listed(self, who: str, job_id: str) -> dict[str, Any]:
        status, page = self.call(who, "GET", "jobs")
        assert status == 200, page
        return next(job for job in page["jobs"] if job["id"] == job_id)

    def until(self, who: str, job_id: str, **wanted: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = self.listed(who, job_id)
            if all(job.get(k) == v for k, v in wanted.items()):
                return job
            time.sleep(0.1)
        raise AssertionError(f"{who}'s {job_id} never became {wanted}: {job}\n{self.server.log()}")

    def download(self, who: str, job_id: str) -> tuple[int, Any]:
        return self.call(who, "GET", f"jobs/{job_id}/files", name="out.txt", type="output")

    def dashboard_download(self, who: str, job_id: str) -> tuple[int, str]:
        """Sign in to /ui/ as ``who`` (CSRF token from the form) and download the job's output."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        base = self.server.url.rstrip("/")
        with opener.open(f"{base}/ui/sign-in", timeout=30) as page:
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
        assert found is not None
        form = urllib.parse.urlencode({"csrf_token": found.group(1), "token": self.tokens[who]})
        opener.open(f"{base}/ui/sign-in", data=form.encode(), timeout=30).close()
        query = urllib.parse.urlencode({"type": "output", "name": "out.txt"})
        try:
            with opener.open(f"{base}/ui/jobs/{job_id}/files?{query}", timeout=30) as answer:
                return answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def archives(self, job_id: str) -> list[Path]:
        root = self.directory / "files" / "persisted_data" / "archive"
        return sorted(root.rglob(f"{job_id}.*")) if root.exists() else []

    def job_root(self, who: str, job_id: str) -> Path:
        return self.directory / "files" / "staging" / ".users" / who / job_id

    def start(self, crash_at: str | None = None) -> None:
        env = dict(os.environ)
        env.pop(CRASH, None)
        if crash_at:
            env[CRASH] = crash_at
        self.server.env = env
        self.server.start()

    def died(self) -> None:
        """Wait for the server to SIGKILL itself at its crash point."""
        assert self.server.process is not None
        code = self.server.process.wait(60)
        assert code == -9, self.server.log()
        self.server.process = None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """A server per database (a PostgreSQL database of its own, created and dropped here)."""
    context = scratch_database("lwr_retention") if request.param == "postgresql" else nullcontext()
    with context as url:
        directory = tmp_path_factory.mktemp(f"retention_{request.param}")
        (directory / "plans.yml").write_text(PLANS)
        service = Service(directory)
        options = {"private_token": ADMIN, "plans": "plans.yml", "retention_scan_interval": "0.3"}
        if url:
            options["database_url"] = url
        write_server_ini(directory, service.server.port, options)
        for name in ("alice", "bob"):
            service.tokens[name] = service.users("add", name)["token"]
        service.start()
        try:
            yield service
        finally:
            service.server.stop()


def test_archive_refuse_upgrade_restore_downgrade(service: Service) -> None:
    service.run("alice", "a1", "first result")
    job = service.until("alice", "a1", archived=True)
    assert job["state"] == "complete" and not job["results_available"] and not job["restoring"]
    status, body = service.download("alice", "a1")
    assert status == 409, body
    assert body["archived"] and body["plan"] == "free" and body["upgrade_to"] == ["premium"]
    assert "upgrading to plan 'premium' restores them" in body["error"]
    status, page = service.dashboard_download("alice", "a1")  # the dashboard says it too
    assert status == 409 and 'id="restore-link"' in page and "premium" in page, page
    status, full = service.call("alice", "GET", "jobs/a1/status")
    assert status == 200 and "logged" in full["stdout"]  # the log stays
    assert len(service.archives("a1")) == 1
    assert not (service.job_root("alice", "a1") / "outputs" / "out.txt").exists()

    service.users("set-plan", "alice", "premium")
    job = service.until("alice", "a1", archived=False)
    assert job["results_available"] and not job["restoring"]
    assert service.download("alice", "a1") == (200, b"first result")
    assert service.archives("a1") == []

    service.users("set-plan", "alice", "free")  # a downgrade: only new results get its deadline
    service.run("alice", "a2", "second")
    service.until("alice", "a2", archived=True)
    assert service.listed("alice", "a1")["archived"] is False
    assert service.download("alice", "a1") == (200, b"first result")


def test_kill_9_mid_archive_and_mid_restore(service: Service) -> None:
    root = service.job_root("bob", "b1")
    service.server.stop()
    service.start(crash_at="archive-stored")
    service.run("bob", "b1", "bob result")
    service.died()  # archive written and checked, the row not yet changed
    assert (root / "outputs" / "out.txt").read_bytes() == b"bob result"
    assert len(service.archives("b1")) == 1
    service.start()
    service.until("bob", "b1", archived=True)
    assert len(service.archives("b1")) == 1  # written again under the same key: once
    assert list((root / "outputs").iterdir()) == []
    assert service.download("bob", "b1")[0] == 409

    service.server.stop()
    service.start(crash_at="restore-placed")
    service.users("set-plan", "bob", "premium")
    service.died()  # files back in place, the row still archived, the archive still there
    assert (root / "outputs" / "out.txt").read_bytes() == b"bob result"
    assert len(service.archives("b1")) == 1
    service.start()
    service.until("bob", "b1", archived=False, restoring=False)
    assert service.download("bob", "b1") == (200, b"bob result")
    assert service.archives("b1") == []
    assert [p.name for p in root.iterdir() if p.name.startswith(".retention")] == []
