"""Signed-in dashboard sessions in the job store's database (SQLite here; PostgreSQL in
tests/integration/test_ui_sessions.py): digests only, idle and absolute expiry, pruning, the
per-user cap, and revoke ending a user's sessions in its own transaction."""

from __future__ import annotations

import pytest

from lwr.errors import ConfigurationError
from lwr.persistence.store import JobStore
from lwr.service import sessions
from lwr.service.plans import Plans
from lwr.service.sessions import SessionConfig, SessionTable, parse_sessions, session_digest
from lwr.service.users import Users


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table(store: JobStore, clock: Clock) -> SessionTable:
    return SessionTable(store.db, SessionConfig(idle_timeout=600, lifetime=3600), clock)


def test_only_the_ids_digest_is_stored(table: SessionTable, store: JobStore) -> None:
    table.create("the-session-id", "alice")
    rows = store.db.fetchall("SELECT * FROM ui_sessions")
    assert "the-session-id" not in repr(rows) and session_digest("the-session-id") in repr(rows)
    found = table.find("the-session-id")
    assert found is not None and found.who == "alice"
    assert table.find("another-id") is None


def test_an_idle_session_expires_and_use_keeps_it_alive(
    table: SessionTable, clock: Clock, store: JobStore
) -> None:
    table.create("a", "alice")
    clock.now += 500
    assert table.find("a") is not None  # used: the idle timeout starts again
    clock.now += 500
    assert table.find("a") is not None
    clock.now += 600
    assert table.find("a") is None
    assert table.count() == 0  # found expired: deleted on the way


def test_use_is_written_at_most_once_a_minute(table: SessionTable, clock: Clock) -> None:
    table.create("a", "alice")
    clock.now += sessions.TOUCH_EVERY / 2
    table.find("a")
    (used,) = table.db.fetchone("SELECT used FROM ui_sessions")
    assert used == clock.now - sessions.TOUCH_EVERY / 2
    clock.now += sessions.TOUCH_EVERY
    table.find("a")
    assert table.db.fetchone("SELECT used FROM ui_sessions")[0] == clock.now


def test_a_session_ends_at_its_lifetime_however_used(table: SessionTable, clock: Clock) -> None:
    table.create("a", "alice")
    for _ in range(7):
        clock.now += 500
        assert table.find("a") is not None
    clock.now += 100  # 3600 s after sign-in
    assert table.find("a") is None


def test_a_sign_in_prunes_every_expired_row(table: SessionTable, clock: Clock) -> None:
    table.create("old", "alice")
    table.create("older", "bob")
    clock.now += 700
    table.create("new", "carol")
    assert table.count() == 1 and table.find("new") is not None


def test_a_user_holds_at_most_the_cap(table: SessionTable, clock: Clock) -> None:
    for n in range(sessions.MAX_PER_USER + 2):
        clock.now += 1
        table.create(f"s{n}", "alice")
    table.create("b", "bob")
    assert table.count("alice") == sessions.MAX_PER_USER
    assert table.find("s0") is None and table.find("s1") is None and table.find("s2")
    assert table.find("b") is not None


def test_sign_out_deletes(table: SessionTable) -> None:
    table.create("a", "alice")
    table.delete("a")
    assert table.find("a") is None and table.count() == 0


def test_revoking_a_user_ends_their_sessions_only(store: JobStore) -> None:
    users = Users(store, Plans(), admin_token="pt")
    users.add("alice")
    users.add("bob")
    users.sessions.create("a1", "alice")
    users.sessions.create("a2", "alice")
    users.sessions.create("b1", "bob")
    users.revoke("alice")
    assert users.sessions.count("alice") == 0 and users.sessions.find("b1") is not None


def test_options_must_be_positive_seconds() -> None:
    assert parse_sessions(sessions.SESSION_DEFAULTS) == SessionConfig()
    for value in ("0", "-1", "soon", "nan"):
        with pytest.raises(ConfigurationError, match="ui_session_lifetime"):
            parse_sessions({**sessions.SESSION_DEFAULTS, "ui_session_lifetime": value})
