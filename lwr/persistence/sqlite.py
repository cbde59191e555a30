"""The SQLite plumbing shared by LWR's durable stores (the job store and the MQ outbox).

One writer connection behind a lock in WAL mode (atomic, and durable across a process crash with
``synchronous=NORMAL``), a versioned schema applied on open, and ``BEGIN IMMEDIATE`` transactions
so a read-modify-write never interleaves with another writer.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lwr.errors import ConfigurationError

#: Process-wide ceiling on SQLite's own heap (page caches of the writer and of every thread's
#: reader connection, statements). Without it the caches fill towards their per-connection
#: ``cache_size`` as the job store grows, one per request thread, which showed as a steady RSS
#: climb in the shared-service soak (docs/benchmarks.md); past this limit SQLite recycles cached
#: pages instead of allocating more. A soft limit: a query that needs more still gets it.
HEAP_LIMIT = 8 * 1024 * 1024


def connect(path: Path) -> sqlite3.Connection:
    """A connection usable from any thread, in autocommit mode with LWR's pragmas."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    db.execute(f"PRAGMA soft_heap_limit={HEAP_LIMIT}")
    return db


def migrate(db: sqlite3.Connection, path: Path, schema: str, version: int) -> None:
    """Apply ``schema`` (idempotent DDL) when the file is older than ``version``.

    A file written by a newer LWR is refused rather than silently misread.
    """
    (current,) = db.execute("PRAGMA user_version").fetchone()
    if current > version:
        db.close()
        raise ConfigurationError(
            f"{path} was written by a newer LWR (schema {current} > {version})"
        )
    if current < version:
        db.executescript(f"BEGIN; {schema} PRAGMA user_version={version}; COMMIT;")


@contextmanager
def transaction(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """An immediate write transaction on ``db``, serialised by ``lock``."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
