"""Dashboard sessions: random ids, idle expiry, a bounded store, constant-time CSRF checks."""

from __future__ import annotations

import time

from webob import Request

from lwr.ui.sessions import COOKIE, SessionStore


def _request(sid: str) -> Request:
    return Request.blank("/ui/jobs", headers={"Cookie": f"{COOKIE}={sid}"})


def test_a_session_is_found_by_its_cookie_until_dropped() -> None:
    store = SessionStore()
    session = store.create("alice")
    assert store.find(_request(session.sid)) is session
    assert store.find(_request("guessed")) is None
    assert store.find(Request.blank("/ui/jobs")) is None
    store.drop(session)
    assert store.find(_request(session.sid)) is None and not store.alive(session)


def test_sessions_are_distinct_and_carry_their_own_csrf_token() -> None:
    store = SessionStore()
    one, two = store.create(), store.create()
    assert one.sid != two.sid and one.csrf != two.csrf
    assert one.csrf_matches(one.csrf)
    assert not one.csrf_matches(two.csrf) and not one.csrf_matches(None)
    assert not one.csrf_matches("") and not one.csrf_matches("é")
    assert not one.signed_in and store.create("").signed_in  # "" is the admin token


def test_idle_sessions_expire() -> None:
    store = SessionStore(idle_seconds=60)
    session = store.create("alice")
    session.used = time.monotonic() - 61
    assert store.find(_request(session.sid)) is None


def test_the_store_is_bounded_and_drops_the_least_recent() -> None:
    store = SessionStore(capacity=2)
    old, kept = store.create(), store.create()
    old.used -= 10
    newest = store.create()
    assert not store.alive(old) and store.alive(kept) and store.alive(newest)


def test_a_flood_of_anonymous_sessions_signs_no_one_out() -> None:
    store = SessionStore(capacity=3)
    alice = store.create("alice")
    alice.used -= 100
    for _ in range(10):
        store.create()
    assert store.alive(alice)
