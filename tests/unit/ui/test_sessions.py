"""Dashboard sessions as the pages see them: random ids, CSRF tokens bound to the id, signed-in
rows in the database (and nothing stored for anonymous visitors), admin sessions bound to the
admin token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from webob import Request

from lwr.persistence.store import JobStore
from lwr.service.sessions import SessionTable
from lwr.ui.sessions import COOKIE, Session, SessionStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    job_store = JobStore(tmp_path / "state")
    yield job_store
    job_store.close()


def _request(sid: str | None = None) -> Request:
    if sid is None:
        return Request.blank("/ui/jobs")
    return Request.blank("/ui/jobs", headers={"Cookie": f"{COOKIE}={sid}"})


def test_a_signed_in_session_is_found_by_its_cookie_until_dropped(store: JobStore) -> None:
    sessions = SessionStore(SessionTable(store.db))
    session = sessions.create("alice")
    found, fresh = sessions.open(_request(session.sid))
    assert found.who == "alice" and found.signed_in and not fresh
    sessions.drop(found)
    again, fresh = sessions.open(_request(session.sid))
    assert not again.signed_in and not fresh and again.sid == session.sid


def test_anonymous_visitors_get_a_new_id_and_store_nothing(store: JobStore) -> None:
    sessions = SessionStore(SessionTable(store.db))
    for cookie in (None, "", "guessed", "x" * 44, "é" * 43):
        session, fresh = sessions.open(_request(cookie))
        assert fresh and not session.signed_in and session.sid != cookie
        assert len(session.sid) == 43
    assert sessions.table.count() == 0


def test_csrf_tokens_are_bound_to_their_session() -> None:
    one, two = Session("a" * 43), Session("b" * 43)
    assert one.csrf != two.csrf and one.csrf == Session("a" * 43).csrf
    assert one.csrf_matches(one.csrf)
    assert not one.csrf_matches(two.csrf) and not one.csrf_matches(None)
    assert not one.csrf_matches("") and not one.csrf_matches("é")
    assert one.sid not in one.csrf


def test_an_admin_session_ends_when_the_admin_token_changes(store: JobStore) -> None:
    table = SessionTable(store.db)
    admin = SessionStore(table, "admin-token").create("")
    (who,) = store.db.fetchone("SELECT who FROM ui_sessions")
    assert "admin-token" not in who and who.startswith(":admin:")
    found, _ = SessionStore(table, "admin-token").open(_request(admin.sid))
    assert found.who == ""
    found, _ = SessionStore(table, "rotated").open(_request(admin.sid))
    assert not found.signed_in and table.count() == 0
