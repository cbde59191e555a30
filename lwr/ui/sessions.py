"""Dashboard sessions, kept server-side in memory, and their CSRF tokens.

Why server-side rather than a cookie signed with a server secret: signing out must end the
session for good (a signed cookie stays valid until it expires, wherever a copy went), a
revoked user or a plan change must apply at the next page, and there is no secret to configure
and rotate. The cost is that a restart signs everyone out, and that sessions live in one
process (LWR serves from one process with threads). The cookie holds only a random id: 256
bits from :mod:`secrets`, looked up in a dict; the session keeps who signed in (a user's name,
or the admin token), never a token.

Every session, even before sign-in, has a CSRF token: the synchronizer-token pattern, a hidden
field of every form compared in constant time on every POST. Signing in replaces the session
(a new id and a new CSRF token) so an id planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from webob import Request, Response

COOKIE = "lwr_session"
#: a session unused for this long is forgotten (its cookie is a browser-session cookie too)
IDLE_SECONDS = 8 * 3600.0
#: at most this many sessions are kept; the least recent anonymous ones go first
MAX_SESSIONS = 10_000


@dataclass
class Session:
    """One browser's session."""

    sid: str
    csrf: str
    #: who signed in: None before sign-in; "" for the admin token; else a service user's name
    who: str | None = None
    used: float = field(default_factory=time.monotonic)

    @property
    def signed_in(self) -> bool:
        return self.who is not None

    def csrf_matches(self, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(
            supplied.encode("utf-8", "replace"), self.csrf.encode()
        )


class SessionStore:
    """Sessions by id, bounded in number and idle time."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS, capacity: int = MAX_SESSIONS) -> None:
        self.idle_seconds = idle_seconds
        self.capacity = capacity
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def find(self, request: Request) -> Session | None:
        """The live session the request's cookie names, or None."""
        sid = request.cookies.get(COOKIE)
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.used > self.idle_seconds:
                del self._sessions[sid]
                return None
            session.used = now
            return session

    def create(self, who: str | None = None) -> Session:
        """A new session (a fresh id and CSRF token)."""
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), who)
        with self._lock:
            if len(self._sessions) >= self.capacity:
                # anonymous sessions go first: a flood of them cannot sign anyone out
                everyone = list(self._sessions.values())
                pool = [s for s in everyone if not s.signed_in] or everyone
                del self._sessions[min(pool, key=lambda s: s.used).sid]
            self._sessions[session.sid] = session
        return session

    def alive(self, session: Session) -> bool:
        with self._lock:
            return self._sessions.get(session.sid) is session

    def drop(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.sid, None)


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
