"""The service users' test server: users alice, bob (free) and pat (premium), once per database.

Shared by test_service_users.py, test_service_uploads.py and the notification tests. Each module
that uses the ``service`` fixture gets its own module-scoped server per database (a PostgreSQL
database of its own, created and dropped here); users are made with the admin command
(``lwr users add``, run in the server's directory), as an admin makes them.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.postgres import scratch_database
from tests.integration.server import BIN, LwrServer, free_port, write_server_ini

ADMIN = "admin-token"
PLANS = """\
free: {max_input_size: 150 KB, max_total_input: 250 KB, max_running_jobs: 1}
premium: {max_running_jobs: 4}
"""
MANAGERS = """\
[manager:_default_]
type = queued_python
max_concurrent_jobs = 4

[manager:big]
type = queued_python
"""
FINAL = ("complete", "failed", "cancelled", "lost")


@dataclass
class Service:
    server: LwrServer
    tokens: dict[str, str]

    def call(
        self, who: str, method: str, path: str, body: bytes | None = None, **params: Any
    ) -> tuple[int, Any]:
        token = ADMIN if who == "admin" else self.tokens[who]
        return self.server.request(method, path, {**params, "private_token": token}, body)

    def lwr_users(self, *args: str) -> dict[str, Any]:
        """``lwr users --json ARGS`` in the server's directory, as an admin types it."""
        done = subprocess.run(
            [str(BIN / "lwr"), "users", "--json", *args],
            cwd=self.server.directory,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def setup_job(self, who: str, job_id: str) -> dict[str, Any]:
        status, answer = self.call(who, "POST", "jobs", job_id=job_id)
        assert status == 200, answer
        return dict(answer)

    def run_job(self, who: str, job_id: str, command: str, **upload: bytes) -> dict[str, Any]:
        """Set up, upload ``name=bytes`` inputs, submit ``command`` (``{in}``/``{out}`` filled)."""
        answer = self.setup_job(who, job_id)
        for name, data in upload.items():
            status, body = self.call(
                who, "POST", f"jobs/{job_id}/files", data, name=name, type="input"
            )
            assert status == 200, body
        line = command.format(i=answer["inputs_directory"], o=answer["outputs_directory"])
        status, body = self.call(who, "POST", f"jobs/{job_id}/submit", command_line=line)
        assert status == 200, body
        return answer

    def wait(self, who: str, job_id: str, states: tuple[str, ...] = FINAL) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = self.call(who, "GET", f"jobs/{job_id}/status")
            assert status == 200, body
            if body["status"] in states:
                return dict(body)
            time.sleep(0.1)
        raise AssertionError(f"{who}'s job {job_id} never reached {states}: {body}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """One server per database with users alice, bob (free) and pat (premium)."""
    with _database(request.param) as url:
        directory = tmp_path_factory.mktemp(f"service_{request.param}")
        (directory / "plans.yml").write_text(PLANS)
        options = {"private_token": ADMIN, "plans": "plans.yml"}
        if url:
            options["database_url"] = url
        port = free_port()
        write_server_ini(directory, port, options)
        (directory / "job_managers.ini").write_text(MANAGERS)
        server = LwrServer(directory, port)
        service = Service(server, {})
        for name in ("alice", "bob"):
            service.tokens[name] = service.lwr_users("add", name)["token"]
        service.tokens["pat"] = service.lwr_users("add", "pat", "--plan", "premium")["token"]
        server.start()
        try:
            yield service
        finally:
            server.stop()


def _database(kind: str) -> Any:
    if kind == "postgresql":
        return scratch_database("lwr_service_users")
    from contextlib import nullcontext

    return nullcontext(None)
