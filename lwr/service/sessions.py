"""Signed-in dashboard sessions, kept in the job store's database (SQLite or PostgreSQL).

Why the database rather than the server's memory: a restart must not sign everyone out, and
several server processes sharing one PostgreSQL database (behind one load balancer) must all
know a session another one made. Why server-side rather than a cookie signed with a server
secret: signing out and revoking a user must end a session for good (a signed cookie stays
valid wherever a copy went until it expires), and there is no secret to configure and rotate.

What a row holds: the SHA-256 of the session id (never the id: the cookie is a bearer secret,
and a copy of the table must not sign anyone in; 256 random bits need no slow hash, as for
users' tokens in :mod:`lwr.service.store`), who signed in (a user's name; for the admin token,
a binding to it that :mod:`lwr.ui.sessions` makes), and the times its two expiries are computed
from: ``used`` (idle timeout) and ``expires`` (absolute lifetime, fixed at sign-in). The CSRF
token needs no column: it is an HMAC of the session id (:mod:`lwr.ui.sessions`), bound to the
session by construction, and the digest stored here cannot give it. Sessions that are not
signed in are not stored at all, so a flood of anonymous visitors writes nothing.

Rows leave when the user signs out, when the user is revoked (in the transaction that revokes,
:meth:`lwr.service.users.Users.revoke`), when found expired, and at each sign-in every expired
row is pruned, so the table holds the live sessions and little else.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lwr.errors import ConfigurationError
from lwr.persistence.database import Database, Writer

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ui_sessions (
    id_hash TEXT PRIMARY KEY,
    who     TEXT NOT NULL,
    created REAL NOT NULL,
    used    REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ui_sessions_who ON ui_sessions (who, created);
CREATE INDEX IF NOT EXISTS ui_sessions_used ON ui_sessions (used);
CREATE INDEX IF NOT EXISTS ui_sessions_expires ON ui_sessions (expires)
"""

#: the options of this module with their defaults, merged into ``lwr.config.APP_DEFAULTS``
SESSION_DEFAULTS: Mapping[str, str] = {
    "ui_session_idle_timeout": "28800",
    "ui_session_lifetime": "86400",
}

#: sessions one user (or the admin token) may hold at once; a new sign-in drops the oldest
MAX_PER_USER = 50
#: ``used`` is rewritten at most this often per session (not one write per page view)
TOUCH_EVERY = 60.0


@dataclass(frozen=True)
class SessionConfig:
    """How long a signed-in session lives: unused (idle) and at most (absolute), in seconds."""

    idle_timeout: float = 8 * 3600.0
    lifetime: float = 24 * 3600.0


def parse_sessions(values: Mapping[str, str]) -> SessionConfig:
    return SessionConfig(
        idle_timeout=_positive(values, "ui_session_idle_timeout"),
        lifetime=_positive(values, "ui_session_lifetime"),
    )


def _positive(values: Mapping[str, str], key: str) -> float:
    try:
        seconds = float(values[key])
    except ValueError:
        raise ConfigurationError(f"{key} must be seconds, not {values[key]!r}") from None
    if not seconds > 0:
        raise ConfigurationError(f"{key} must be positive, not {values[key]!r}")
    return seconds


def session_digest(session_id: str) -> str:
    """The stored form of a session id (see the module docstring for why SHA-256 suffices)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """A live session's row: who signed in and its times."""

    who: str
    created: float
    used: float
    expires: float


class SessionTable:
    """Rows of ``ui_sessions``; the cookie and the CSRF token are :mod:`lwr.ui.sessions`'."""

    def __init__(
        self,
        db: Database,
        config: SessionConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.config = config or SessionConfig()
        self.clock = clock
        db.migrate("ui_sessions", _SCHEMA, SCHEMA_VERSION)

    def create(self, session_id: str, who: str) -> SignedIn:
        """Record a signed-in session; prunes expired rows and ``who``'s oldest beyond the cap."""
        now = self.clock()
        row = SignedIn(who, now, now, now + self.config.lifetime)
        with self.db.transaction() as tx:
            self._prune(tx, now)
            tx.execute(
                "INSERT INTO ui_sessions (id_hash, who, created, used, expires) VALUES (?,?,?,?,?)",
                (session_digest(session_id), who, row.created, row.used, row.expires),
            )
            tx.execute(
                "DELETE FROM ui_sessions WHERE who=? AND id_hash NOT IN (SELECT id_hash FROM "
                "ui_sessions WHERE who=? ORDER BY created DESC LIMIT ?)",
                (who, who, MAX_PER_USER),
            )
        return row

    def find(self, session_id: str) -> SignedIn | None:
        """The live session of this id, or None (an expired one is deleted on the way)."""
        digest = session_digest(session_id)
        row = self.db.fetchone(
            "SELECT who, created, used, expires FROM ui_sessions WHERE id_hash=?", (digest,)
        )
        if row is None:
            return None
        found = SignedIn(*row)
        now = self.clock()
        if self._expired(found, now):
            self.delete(session_id)
            return None
        if now - found.used >= TOUCH_EVERY:
            with self.db.transaction() as tx:
                tx.execute("UPDATE ui_sessions SET used=? WHERE id_hash=?", (now, digest))
        return found

    def delete(self, session_id: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM ui_sessions WHERE id_hash=?", (session_digest(session_id),))

    @staticmethod
    def end_all_of(tx: Writer, who: str) -> None:
        """Delete every session of ``who``, inside the caller's transaction (a revoke's)."""
        tx.execute("DELETE FROM ui_sessions WHERE who=?", (who,))

    def prune(self) -> None:
        with self.db.transaction() as tx:
            self._prune(tx, self.clock())

    def count(self, who: str | None = None) -> int:
        if who is None:
            (n,) = self.db.fetchone("SELECT COUNT(*) FROM ui_sessions")
        else:
            (n,) = self.db.fetchone("SELECT COUNT(*) FROM ui_sessions WHERE who=?", (who,))
        return int(n)

    def _expired(self, row: SignedIn, now: float) -> bool:
        return now >= row.expires or now - row.used >= self.config.idle_timeout

    def _prune(self, tx: Writer, now: float) -> None:
        tx.execute(
            "DELETE FROM ui_sessions WHERE expires<=? OR used<=?",
            (now, now - self.config.idle_timeout),
        )
