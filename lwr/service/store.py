"""The users table, kept in the job store's database (SQLite or PostgreSQL, one SQL for both).

Keeping users beside the jobs means one database to back up and, on PostgreSQL, one place a
shared service runs from; the owner of a job is part of its stored id
(:mod:`lwr.managers.namespace`), so listing a user's jobs needs no join.

Tokens are stored as their SHA-256 digest, never as themselves. A slow password hash (bcrypt,
argon2) exists to make guessing a *human-chosen* secret expensive; these tokens are 256 random
bits made by :mod:`secrets`, which no amount of guessing reaches, so a fast hash loses nothing
and lets every request be authenticated by one indexed lookup of the digest. The digest found is
compared with :func:`hmac.compare_digest` all the same, so no comparison leaks timing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lwr.errors import NotFoundError, UserExistsError
from lwr.persistence.database import Database, Writer

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS service_users (
    name       TEXT PRIMARY KEY,
    plan       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created    REAL NOT NULL,
    updated    REAL NOT NULL,
    revoked    REAL
)
"""

_COLUMNS = "name, plan, created, updated, revoked"
_MUTABLE = frozenset({"plan", "revoked", "token_hash"})


@dataclass(frozen=True)
class User:
    """A service user as stored (never its token)."""

    name: str
    plan: str
    created: float
    updated: float
    revoked: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plan": self.plan,
            "created": self.created,
            "revoked": self.revoked,
            "active": self.active,
        }


def token_digest(token: str) -> str:
    """The stored form of a token (see the module docstring for why SHA-256 suffices)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UserStore:
    """Rows of ``service_users``; the rules (plans, names) live in :mod:`lwr.service.users`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate("service_users", _SCHEMA, SCHEMA_VERSION)

    def insert(self, name: str, plan: str, token_hash: str) -> User:
        now = time.time()
        try:
            with self.db.transaction() as tx:
                tx.execute(
                    "INSERT INTO service_users (name, plan, token_hash, created, updated) "
                    "VALUES (?,?,?,?,?)",
                    (name, plan, token_hash, now, now),
                )
        except self.db.integrity_error:
            raise UserExistsError(
                f"user {name!r} exists already (names are not reused, even after revoke)"
            ) from None
        return User(name, plan, now, now)

    def get(self, name: str) -> User:
        row = self.db.fetchone(f"SELECT {_COLUMNS} FROM service_users WHERE name=?", (name,))
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return User(*row)

    def by_digest(self, digest: str) -> tuple[User, str] | None:
        """The active user whose token has ``digest``, with the digest as stored."""
        row = self.db.fetchone(
            f"SELECT {_COLUMNS}, token_hash FROM service_users "
            "WHERE token_hash=? AND revoked IS NULL",
            (digest,),
        )
        return (User(*row[:5]), row[5]) if row else None

    def all(self) -> list[User]:
        rows = self.db.fetchall(f"SELECT {_COLUMNS} FROM service_users ORDER BY name")
        return [User(*row) for row in rows]

    def update(
        self, name: str, also: Callable[[Writer], None] | None = None, **changes: Any
    ) -> User:
        """Set ``plan``, ``revoked`` or ``token_hash`` of an existing user.

        ``also(tx)`` runs in the same transaction (a revoke ends the user's dashboard sessions
        there, so no session outlives the revoke's commit).
        """
        if not changes or set(changes) - _MUTABLE:
            raise ValueError(f"only {sorted(_MUTABLE)} can change, not {sorted(changes)}")
        assignments = ", ".join(f"{key}=?" for key in changes)
        with self.db.transaction() as tx:
            found = tx.execute(
                f"UPDATE service_users SET {assignments}, updated=? WHERE name=?",
                (*changes.values(), time.time(), name),
            )
            missing = getattr(found, "rowcount", 1) == 0
            if also is not None and not missing:
                also(tx)
        if missing:
            raise NotFoundError(f"no user {name!r}")
        return self.get(name)
