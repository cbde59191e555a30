"""What a local worker that stopped left in its directory, and whether anything there is needed.

Split from :mod:`lwr.balancer.drivers.local`, which removes the directory of a worker that has
nothing left to hand back and keeps the others. "Left to hand back" is read from the worker's own
job store, with the rule the worker itself applies at start-up
(:meth:`lwr.pool.abandon.GivingUp.forget_unowned`): a job that is not final, or final but never
announced to Galaxy, is unfinished. The store is the worker's SQLite file under its
``persistence_directory``; a worker configured with ``database_url`` (a database server) has no
store this module reads, and then only its exit status speaks for it.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import sqlite3
from pathlib import Path

from lwr.managers.base import FINAL_STATES

log = logging.getLogger(__name__)

FINAL = frozenset(state.value for state in FINAL_STATES)
#: lines of a worker's log quoted when it stopped with an error
LOG_TAIL = 5


def unfinished_jobs(directory: Path) -> int | None:
    """How many jobs the stopped worker in ``directory`` left unfinished or unannounced.

    0 when it has no store at all (it never took a job); None when the store cannot be read.
    """
    persistence = persistence_directory(directory)
    if persistence is None:
        return None
    jobs = persistence / "jobs.sqlite3"
    if not jobs.exists():
        return 0
    try:
        with contextlib.closing(_open(jobs)) as connection:
            rows = connection.execute("SELECT manager, job_id, attempt, state FROM jobs").fetchall()
        told = _announced(persistence / "outbox.sqlite3")
    except sqlite3.Error as exc:
        log.warning("cannot read the job store %s: %s", jobs, exc)
        return None
    return sum(
        1
        for manager, job_id, attempt, state in rows
        if state not in FINAL or told.get((manager, job_id)) != (attempt, state)
    )


def persistence_directory(directory: Path) -> Path | None:
    """The worker's ``persistence_directory`` from its server.ini; None if it uses a database
    server (``database_url``) or its server.ini cannot be read."""
    from lwr.config import APP_DEFAULTS

    parser = configparser.ConfigParser(defaults={"here": str(directory)}, strict=False)
    try:
        parser.read(directory / "server.ini")
        section = parser["app:main"]
        if section.get("database_url", "").strip():
            return None
        value = section.get("persistence_directory", APP_DEFAULTS["persistence_directory"])
    except (configparser.Error, KeyError, OSError) as exc:
        log.warning("cannot read %s: %s", directory / "server.ini", exc)
        return None
    path = Path(os.path.expanduser(value.strip()))
    return path if path.is_absolute() else directory / path


def exit_words(status: int | None) -> str:
    """How a worker's process ended, for the log."""
    if status is None:
        return "stopped (its exit status is unknown: not started by this balancer)"
    if status < 0:
        return f"was killed by signal {-status}"
    return f"exited with status {status}"


def log_tail(directory: Path, lines: int = LOG_TAIL) -> str:
    """The last lines of the worker's log (its own account of why it stopped)."""
    try:
        text = (directory / "worker.log").read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _open(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def _announced(path: Path) -> dict[tuple[str, str], tuple[int, str]]:
    if not path.exists():
        return {}
    with contextlib.closing(_open(path)) as connection:
        rows = connection.execute("SELECT manager, job_id, attempt, state FROM announced")
        return {(m, j): (a, s) for m, j, a, s in rows.fetchall()}
