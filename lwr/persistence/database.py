"""The job store's database: an SQLite file by default, PostgreSQL when ``database_url`` is set.

Both speak the same SQL here: ``?`` placeholders (turned into psycopg's ``%s``), upserts with
``ON CONFLICT ... DO UPDATE`` (SQLite 3.24+, PostgreSQL 9.5+), ``CREATE ... IF NOT EXISTS``, and
``REAL`` columns (widened to ``DOUBLE PRECISION`` on PostgreSQL, whose ``REAL`` is 4 bytes and
would round a timestamp to minutes). So a store is written once, and a test parametrized over both
databases runs the very statements the server runs.

The shape is the one :mod:`lwr.persistence.sqlite` set for SQLite: one writer connection behind a
lock, so every transaction is serialised in this process, and one read connection per thread,
so status requests never wait behind a write. PostgreSQL goes through psycopg 3, the driver its
own project maintains, chosen over an ORM layer because the store's few statements are plain SQL
that both databases already accept; SQLAlchemy would add a dependency and a layer for nothing.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from lwr.errors import ConfigurationError
from lwr.persistence import sqlite

Params = Sequence[Any]


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Writer(Protocol):
    """What a transaction body gets: ``execute`` with ``?`` placeholders."""

    def execute(self, sql: str, params: Params = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Params]) -> Any: ...


class Database:
    """Common behaviour; :func:`open_database` picks the subclass."""

    dialect = ""
    #: the exception a UNIQUE or PRIMARY KEY violation raises
    integrity_error: type[Exception] = Exception

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the writer's
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Any] = []

    # -- what stores use --------------------------------------------------------------------

    def fetchone(self, sql: str, params: Params = ()) -> Any:
        return self._reader().execute(self.sql(sql), params).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        return list(self._reader().execute(self.sql(sql), params).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        """One write transaction, serialised with every other one of this process."""
        raise NotImplementedError
        yield  # pragma: no cover

    def migrate(self, name: str, schema: str, version: int, upgrade: Upgrade | None = None) -> None:
        """Bring ``name``'s tables to ``version``: ``upgrade(tx, current)`` then ``schema``.

        ``schema`` is idempotent DDL (``IF NOT EXISTS``); ``upgrade`` alters tables an older
        release created. A database written by a newer LWR is refused rather than misread.
        """
        with self.transaction() as tx:
            current = self._version(tx, name)
            if current > version:
                raise ConfigurationError(
                    f"the {name} tables were written by a newer LWR (schema {current} > {version})"
                )
            if current == version:
                return
            if current and upgrade is not None:
                upgrade(tx, current)
            for statement in self.ddl(schema):
                tx.execute(statement)
            self._set_version(tx, name, version)

    def close(self) -> None:
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        with self._lock:
            self._close_writer()

    # -- dialect hooks ----------------------------------------------------------------------

    def sql(self, statement: str) -> str:
        return statement

    def ddl(self, schema: str) -> list[str]:
        return [s.strip() for s in schema.split(";") if s.strip()]

    def _reader(self) -> Any:
        db = getattr(self._local, "db", None)
        if db is not None and not self._usable(db):
            with self._readers_lock:
                self._readers.remove(db)
            db.close()
            db = None
        if db is None:
            db = self._connect_reader()
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    def _connect_reader(self) -> Any:
        raise NotImplementedError

    def _usable(self, db: Any) -> bool:
        """Whether a connection can still be used (a server restart breaks a network one)."""
        return True

    def _close_writer(self) -> None:
        raise NotImplementedError

    def _version(self, tx: Writer, name: str) -> int:
        raise NotImplementedError

    def _set_version(self, tx: Writer, name: str, version: int) -> None:
        raise NotImplementedError


Upgrade = Callable[[Writer, int], None]


class SqliteDatabase(Database):
    """``jobs.sqlite3`` in the persistence directory (WAL, see :mod:`lwr.persistence.sqlite`)."""

    dialect = "sqlite"
    integrity_error = sqlite3.IntegrityError

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._db = sqlite.connect(path)

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        with sqlite.transaction(self._db, self._lock) as db:
            yield db

    def _connect_reader(self) -> Any:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA cache_size=-512")  # 512 KiB: readers only need a few pages each
        return db

    def _close_writer(self) -> None:
        self._db.close()

    def _version(self, tx: Writer, name: str) -> int:
        # the jobs tables keep SQLite's own counter (older releases wrote it); others a table
        if name == "jobs":
            return int(tx.execute("PRAGMA user_version").fetchone()[0])
        return _table_version(tx, name)

    def _set_version(self, tx: Writer, name: str, version: int) -> None:
        if name == "jobs":
            tx.execute(f"PRAGMA user_version={int(version)}")
        else:
            _set_table_version(tx, name, version)


class PostgresDatabase(Database):
    """A PostgreSQL database named by ``database_url`` (``postgresql://user@host:port/db``)."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:  # the `postgres` extra
            raise ConfigurationError(
                "database_url names PostgreSQL: install psycopg (pip install 'lwr[postgres]')"
            ) from exc
        self._psycopg = psycopg
        self.integrity_error = psycopg.errors.IntegrityError
        self.url = url
        self._db = self._connect()

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self.url, autocommit=True)
        except self._psycopg.Error as exc:
            raise ConfigurationError(f"cannot connect to database_url: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        with self._lock:
            if not self._usable(self._db):
                self._db.close()
                self._db = self._connect()
            with self._db.transaction():
                yield _Placeholders(self._db, self)

    def _usable(self, db: Any) -> bool:
        # a connection the server dropped is marked broken by the query that found out: that
        # request fails, the next one connects again
        return not (db.closed or db.broken)

    def migrate(self, name: str, schema: str, version: int, upgrade: Upgrade | None = None) -> None:
        # another process (the server, `lwr users`) may migrate at the same moment
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(7311)")
            tx.execute(_VERSIONS_TABLE)
        super().migrate(name, schema, version, upgrade)

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def ddl(self, schema: str) -> list[str]:
        widened = re.sub(r"\bREAL\b", "DOUBLE PRECISION", schema)
        return super().ddl(widened)

    def _connect_reader(self) -> Any:
        return self._connect()

    def _close_writer(self) -> None:
        self._db.close()

    def _version(self, tx: Writer, name: str) -> int:
        return _table_version(tx, name)

    def _set_version(self, tx: Writer, name: str, version: int) -> None:
        _set_table_version(tx, name, version)


class _Placeholders:
    """A psycopg connection taking the store's ``?`` placeholders."""

    def __init__(self, db: Any, database: Database) -> None:
        self._db = db
        self._database = database

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        return self._db.execute(self._database.sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with self._db.cursor() as cursor:
            cursor.executemany(self._database.sql(sql), rows)


_VERSIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS lwr_schema (name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


def _table_version(tx: Writer, name: str) -> int:
    tx.execute(_VERSIONS_TABLE)
    row = tx.execute("SELECT version FROM lwr_schema WHERE name=?", (name,)).fetchone()
    return int(row[0]) if row else 0


def _set_table_version(tx: Writer, name: str, version: int) -> None:
    tx.execute(
        "INSERT INTO lwr_schema (name, version) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
        (name, version),
    )


def open_database(directory: Path, database_url: str | None = None) -> Database:
    """PostgreSQL when ``database_url`` is given, else ``<directory>/jobs.sqlite3``."""
    if database_url:
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError(
                f"database_url must be a postgresql:// URL, not {database_url.split(':')[0]!r}"
            )
        return PostgresDatabase(database_url)
    directory.mkdir(parents=True, exist_ok=True)
    return SqliteDatabase(directory / "jobs.sqlite3")
