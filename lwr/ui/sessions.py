"""Dashboard sessions: the cookie, its CSRF token, and the signed-in rows behind it.

A session is a random id (256 bits from :mod:`secrets`) in the ``lwr_session`` cookie. A
signed-in session is a row of the job store's database (:mod:`lwr.service.sessions`, keyed by
the id's SHA-256), so it survives a restart and every server sharing the database knows it; a
session that is not signed in is the cookie alone, stored nowhere, so anonymous visitors write
nothing and cannot crowd anyone out.

Every session, even before sign-in, has a CSRF token: the synchronizer-token pattern, a hidden
field of every form compared in constant time on every POST. The token is HMAC-SHA256 of a fixed
label keyed with the session id: bound to that session (another session's token does not
match), unguessable without the id, and nothing to store (the database's digest of the id
cannot give it). Signing in replaces the session (a new id, hence a new CSRF token), so an id
planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from webob import Request, Response

from lwr.service.sessions import SessionTable

COOKIE = "lwr_session"
#: what :func:`secrets.token_urlsafe` (32 bytes) makes; any other cookie value gets a fresh id
_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")
_CSRF_LABEL = b"lwr-ui-csrf-v1"
#: what an admin session's row holds instead of a user's name (no user name has a ":")
_ADMIN = ":admin:"


def new_id() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Session:
    """One browser's session for the time of a request."""

    sid: str
    #: who signed in: None before sign-in; "" for the admin token; else a service user's name
    who: str | None = None
    #: dropped during this request (signed in anew, signed out, revoked): its cookie is stale
    ended: bool = False

    @property
    def signed_in(self) -> bool:
        return self.who is not None

    @property
    def csrf(self) -> str:
        digest = hmac.new(self.sid.encode(), _CSRF_LABEL, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def csrf_matches(self, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(
            supplied.encode("utf-8", "replace"), self.csrf.encode()
        )


class SessionStore:
    """Sessions as the dashboard sees them, over the signed-in rows of ``table``.

    An admin session's row names, instead of a user, the admin token it was signed in with:
    ``:admin:`` and HMAC-SHA256 of that token keyed with the session id. Changing
    ``private_token`` (and restarting) therefore ends every admin session at its next page, and
    the row gives no way to test guesses of the token without the session id.
    """

    def __init__(self, table: SessionTable, admin_token: str | None = None) -> None:
        self.table = table
        self.admin_token = admin_token

    def open(self, request: Request) -> tuple[Session, bool]:
        """The request's session, and whether it is new (its cookie must be set).

        A well-formed id whose row is not there (never signed in, signed out, expired, revoked)
        is a session that is not signed in; the browser keeps its cookie.
        """
        sid = request.cookies.get(COOKIE)
        if not sid or not _ID.match(sid):
            return Session(new_id()), True
        found = self.table.find(sid)
        if found is None:
            return Session(sid), False
        if not found.who.startswith(_ADMIN):
            return Session(sid, found.who), False
        if self.admin_token and hmac.compare_digest(found.who, self._admin_binding(sid)):
            return Session(sid, ""), False
        self.table.delete(sid)  # signed in with an admin token that is no longer the server's
        return Session(sid), False

    def create(self, who: str) -> Session:
        """A new signed-in session (a fresh id, hence a fresh CSRF token); "" is the admin."""
        session = Session(new_id(), who)
        self.table.create(session.sid, who or self._admin_binding(session.sid))
        return session

    def _admin_binding(self, sid: str) -> str:
        if not self.admin_token:
            raise ValueError("no admin token: no admin session")  # sign-in refuses it before
        key = hmac.new(sid.encode(), b"admin:" + self.admin_token.encode(), hashlib.sha256)
        return _ADMIN + key.hexdigest()

    def drop(self, session: Session) -> None:
        """End the session: its row goes; the request answers with another cookie or none."""
        if session.who is not None:
            self.table.delete(session.sid)
        session.who = None
        session.ended = True


def set_cookie(response: Response, request: Request, session: Session) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure when the page came over HTTPS."""
    response.set_cookie(
        COOKIE,
        session.sid,
        path="/ui",
        httponly=True,
        samesite="lax",
        secure=request.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/ui")
