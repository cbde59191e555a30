"""Dashboard sessions kept in the database, with real servers, on SQLite and on PostgreSQL.

A signed-in browser (plain HTTP, cookie and CSRF token as a browser keeps them) stays signed in
across a real restart of the server, and on a second server sharing the database; ``lwr users
revoke`` (the admin's command, another process) ends a user's sessions; sessions past their idle
timeout or lifetime are refused and pruned. The database is read (and, to age a session, written)
directly, the way an operator's SQL would.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lwr.persistence.database import Database, open_database
from lwr.service.sessions import SESSION_DEFAULTS, session_digest
from tests.integration.dashboard import DashboardClient
from tests.integration.postgres import scratch_database
from tests.integration.server import BIN, LwrServer, free_port, write_server_ini

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

ADMIN = "admin-token"
IDLE = float(SESSION_DEFAULTS["ui_session_idle_timeout"])


@dataclass
class Service:
    server: LwrServer
    options: dict[str, str]
    db: Database
    tokens: dict[str, str]

    def browser(self, who: str, server: LwrServer | None = None) -> DashboardClient:
        client = DashboardClient((server or self.server).url)
        client.sign_in(ADMIN if who == "admin" else self.tokens[who])
        return client

    def rows(self, who: str | None = None) -> list[tuple[Any, ...]]:
        if who is None:
            return self.db.fetchall("SELECT id_hash, who, created, used, expires FROM ui_sessions")
        return self.db.fetchall("SELECT id_hash FROM ui_sessions WHERE who=?", (who,))

    def age(self, client: DashboardClient, column: str, seconds: float) -> None:
        """Move a session's ``used`` or ``expires`` back in time, as if time had passed."""
        with self.db.transaction() as tx:
            tx.execute(
                f"UPDATE ui_sessions SET {column}={column}-? WHERE id_hash=?",
                (seconds, session_digest(client.cookie)),
            )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    database = scratch_database("lwr_ui_sessions") if request.param == "postgresql" else None
    with database or nullcontext(None) as url:
        directory = tmp_path_factory.mktemp(f"ui_sessions_{request.param}")
        state = directory / "state"
        options = {"private_token": ADMIN, "persistence_directory": str(state)}
        if url:
            options["database_url"] = url
        port = free_port()
        write_server_ini(directory, port, options)
        server = LwrServer(directory, port).start()
        db = open_database(state, url)
        tokens = {}
        for name in ("alice", "bob", "carol", "dave"):
            status, answer = server.request("POST", "users", {"name": name, "private_token": ADMIN})
            assert status == 200, answer
            tokens[name] = answer["token"]
        try:
            yield Service(server, options, db, tokens)
        finally:
            db.close()
            server.stop()


def test_a_session_survives_a_restart_and_only_its_digest_is_stored(service: Service) -> None:
    alice = service.browser("alice")
    csrf = alice.csrf("/ui/profile")
    rows = service.rows()
    assert alice.cookie not in repr(rows) and csrf not in repr(rows)
    assert (session_digest(alice.cookie),) in service.rows("alice")
    service.server.restart()
    assert alice.signed_in()
    # the form from before the restart still carries a valid CSRF token
    answer = alice.post("/ui/profile/plan", {"plan": "premium", "csrf_token": csrf})
    assert answer.status == 303, answer
    assert service.server.get("users/alice", private_token=ADMIN)[1]["user"]["plan"] == "premium"
    assert alice.post("/ui/profile/plan", {"plan": "free", "csrf_token": "x" + csrf}).status == 403


def test_two_servers_on_one_database_share_sessions(service: Service, tmp_path: Path) -> None:
    port = free_port()
    write_server_ini(tmp_path, port, service.options)  # its own staging, the same database
    other = LwrServer(tmp_path, port).start()
    try:
        bob = service.browser("bob")
        on_other = DashboardClient(other.url, bob.cookie)
        assert on_other.signed_in()
        on_other.post("/ui/sign-out", {"csrf_token": on_other.csrf("/ui/profile")})
        assert not DashboardClient(service.server.url, bob.cookie).signed_in()
        assert service.rows("bob") == []
    finally:
        other.stop()


def test_revoking_a_user_ends_their_sessions(service: Service) -> None:
    carol, carol_too, admin = (
        service.browser("carol"),
        service.browser("carol"),
        service.browser("admin"),
    )
    assert len(service.rows("carol")) == 2
    done = subprocess.run(
        [str(BIN / "lwr"), "users", "revoke", "carol"],
        cwd=service.server.directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert service.rows("carol") == []  # gone with the revoke, before any page was asked for
    assert not carol.signed_in() and not carol_too.signed_in()
    assert admin.signed_in()


def test_expired_sessions_are_refused_and_pruned(service: Service) -> None:
    idle, old, unvisited = (service.browser("dave") for _ in range(3))
    service.age(idle, "used", IDLE + 1)
    assert not idle.signed_in()
    service.age(old, "expires", time.time() + 1)  # its lifetime is over, though it was just used
    assert not old.signed_in()
    assert service.rows("dave") == [(session_digest(unvisited.cookie),)]  # both deleted
    service.age(unvisited, "used", IDLE + 1)
    service.browser("admin")  # every sign-in prunes expired rows, visited or not
    assert service.rows("dave") == []
    assert not unvisited.signed_in()
