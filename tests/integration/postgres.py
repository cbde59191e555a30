"""A PostgreSQL database of the test's own on the machine's server (127.0.0.1:5432, trust auth).

Each use creates a database with a unique name and drops it afterwards, so parallel runs and
other helpers' tests never share tables. Locally a missing server skips; in CI it fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import require_service

SERVER = "postgresql://postgres@127.0.0.1:5432"


def _admin_connection() -> object | None:
    try:
        import psycopg

        return psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5)
    except Exception:
        return None


@contextmanager
def scratch_database(prefix: str = "lwr_test") -> Iterator[str]:
    """The URL of a fresh, empty database; dropped (with its connections) on exit."""
    admin = _admin_connection()
    require_service(admin is not None, f"no PostgreSQL server at {SERVER}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield f"{SERVER}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]
