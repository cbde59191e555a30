"""Service users' TES tasks from before namespaces, moved into their owners' namespaces at start.

LWR releases before per-user TES namespaces stored a service user's task like the admin
token's: the job id as it is (``<id>``, the ``owner`` column empty), its directory at
``<manager root>/<id>``, and its owner only as the label ``user:<name>`` in the task's launch
record. Everything a user's job gets from the service (``ListTasks`` of their namespace,
``GET /jobs``, the dashboard, the running limit) reads the stored id and the ``owner`` column,
so such a task would be invisible there. At start-up, before any manager recovers its jobs,
:func:`adopt` gives each one the place a task of that user gets now: ``<user>~<id>``, owner
``<user>``, directory ``<manager root>/.users/<user>/<id>``. The client's task id is unchanged.

Crash safety: the tasks to move are found once, by one scan of the admin namespace's jobs
written in the same transaction as its "scanned" mark, into ``tes_legacy_tasks``; an entry
leaves that table only once its task is entirely moved. Each move is steps that can each be
repeated: the directory is renamed (one ``rename``), then the job's rows are renamed in one
transaction (:meth:`~lwr.persistence.store.JobStore.rename_job`), its launch record given the
key stage-in records input sizes under, then its inputs are named in the files table. A task
that has not finished keeps working meanwhile: its command line and job script name the old
directory, so the old name is left as a link to the new place (made under a temporary name and
renamed over the old one, as :mod:`lwr.managers.layout` does) until a start finds the task
final, when the link goes with its entry. A task that finished before the upgrade is not
archived by its owner's plan's retention or notified: neither applied to it when it finished;
one finishing afterwards is.

Tests only: ``LWR_TES_TEST_CRASH_AT=<step>:<n>`` makes the process SIGKILL itself right after the
n-th item of a step (``scanned``, ``link-made``, ``dir-renamed``, ``link-placed``, ``rows``,
``input``, ``entry``, ``link-removed``), so a test can stop a real start between any two steps
(tests/integration/test_tes_legacy_crash.py). Without the variable it does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from lwr.errors import LwrError
from lwr.managers import namespace
from lwr.managers.base import JobState
from lwr.managers.stateful import StatefulManager
from lwr.persistence.database import Writer
from lwr.persistence.store import JobRecord, JobStore
from lwr.tes import paths
from lwr.tes.job_files import size_below as _size_below
from lwr.tes.models import task_from_document
from lwr.tes.owner import user_of
from lwr.tes.staging import JOB_KEY, LAUNCH_KEY
from lwr.tes.views import tes_info

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tes_legacy_tasks (
    manager TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    owner   TEXT NOT NULL,
    PRIMARY KEY (manager, job_id)
);
CREATE TABLE IF NOT EXISTS tes_legacy_scan (name TEXT PRIMARY KEY)
"""
#: what a legacy task's launch record holds (json.dumps' separators): a prefilter, then parsed
_LABEL = '%"owner": "user:%'
_MOVING = ".moving-"
#: the test-only crash point (see the module docstring); read at start-up only
CRASH_VARIABLE = "LWR_TES_TEST_CRASH_AT"
_passed: dict[str, int] = {}  # how many items of each step this process has done


def adopt(store: JobStore, managers: Mapping[str, StatefulManager]) -> int:
    """Move every legacy task of a configured manager into its owner's namespace; how many.

    A task of a manager not configured now stays listed for the start that configures it.
    """
    store.db.migrate("tes_legacy", _SCHEMA, SCHEMA_VERSION)
    with store.db.transaction() as tx:
        _scan_once(tx)
    _crash_point("scanned")
    entries = store.db.fetchall(  # in a fixed order: the crash test counts on it
        "SELECT manager, job_id, owner FROM tes_legacy_tasks ORDER BY manager, job_id"
    )
    moved = 0
    for manager_name, job_id, user in entries:
        manager = managers.get(manager_name)
        if manager is None:
            continue
        try:
            moved += _adopt_one(store, manager, job_id, user)
        except (OSError, LwrError) as exc:  # one task's trouble must not stop the server
            log.error("TES: cannot move task %s/%s of %s: %s", manager_name, job_id, user, exc)
    return moved


def _crash_point(step: str) -> None:
    """Tests only: die as ``kill -9`` would after the n-th ``step`` when the variable names it."""
    wanted = os.environ.get(CRASH_VARIABLE)
    if wanted:
        _passed[step] = _passed.get(step, 0) + 1
        if wanted == f"{step}:{_passed[step]}":
            log.warning("TES: %s=%s: killing this process now", CRASH_VARIABLE, wanted)
            os.kill(os.getpid(), signal.SIGKILL)


def _scan_once(tx: Writer) -> None:
    """Enter the admin namespace's TES tasks labelled as a user's, once per database."""
    if tx.execute("SELECT 1 FROM tes_legacy_scan WHERE name='scanned'").fetchone() is not None:
        return
    rows = tx.execute(
        "SELECT manager, job_id, launch FROM jobs WHERE owner='' AND launch LIKE ?", (_LABEL,)
    ).fetchall()
    for manager, job_id, launch in rows:
        user = legacy_owner(job_id, launch)
        if user is not None:
            tx.execute(
                "INSERT INTO tes_legacy_tasks (manager, job_id, owner) VALUES (?,?,?) "
                "ON CONFLICT (manager, job_id) DO NOTHING",
                (manager, job_id, user),
            )
    tx.execute(
        "INSERT INTO tes_legacy_scan (name) VALUES ('scanned') ON CONFLICT (name) DO NOTHING"
    )


def legacy_owner(job_id: str, launch: str | None) -> str | None:
    """The user a job of the admin namespace was a TES task of, None for anything else."""
    if namespace.SEPARATOR in job_id or not launch:
        return None
    try:
        tes = json.loads(launch).get("tes")
    except (ValueError, AttributeError):
        return None
    if not isinstance(tes, dict) or not isinstance(tes.get("owner"), str):
        return None
    user = user_of(tes["owner"])
    if user is None or not namespace.USER_NAME_PATTERN.match(user):
        return None
    return user


def _adopt_one(store: JobStore, manager: StatefulManager, job_id: str, user: str) -> int:
    """One task's next steps (each repeatable); 1 when its rows were renamed now."""
    new_id = namespace.scoped(user, job_id)
    old = store.get(manager.name, job_id)
    new = store.get(manager.name, new_id)
    if old is not None and new is not None:
        log.error(
            "TES: task %s/%s of %s: both %s and %s are stored; left as it is",
            manager.name, job_id, user, job_id, new_id,
        )  # fmt: skip
        return 0
    current = old or new
    linked = current is not None and _move_directory(
        manager.staging_directory, job_id, user, keep_link=not current.state.is_final
    )  # no record: the task expired since the scan, and its directory with it
    if old is not None:
        launch = dict(old.launch or {})
        launch[LAUNCH_KEY] = {**launch[LAUNCH_KEY], JOB_KEY: [manager.name, new_id]}
        store.rename_job(manager.name, job_id, new_id, launch)  # its sizes go to the new id
        log.info("TES: task %s/%s of %s moved into their namespace", manager.name, job_id, user)
        _crash_point("rows")
    if current is not None:  # again after a crash between the rename and the last input
        _name_inputs(store, manager, current, new_id)
    if not linked:
        with store.db.transaction() as tx:
            tx.execute(
                "DELETE FROM tes_legacy_tasks WHERE manager=? AND job_id=?", (manager.name, job_id)
            )
        _crash_point("entry")
    return 1 if old is not None else 0


def _name_inputs(store: JobStore, manager: StatefulManager, record: JobRecord, new_id: str) -> None:
    """Name the task's inputs in its files table, as a task made now has them: a ``content``
    input with its size, a fetched one with what its file weighs now (0 before stage-in).

    Repeatable: an input named already keeps its row (a crash after the rows' rename, or
    stage-in since, has it right), so each start names what an earlier one left out."""
    task = task_from_document(tes_info(record).get("task") or {})
    staged = record.state not in (JobState.SETUP, JobState.PREPROCESSING)
    root = manager.directory(new_id).sub(paths.ROOT_SUBDIR)
    for item in task.inputs:
        if item.content is not None:
            size = len(item.content.encode("utf-8"))
        else:
            size = _size_below(paths.host_path(root, item.path)) if staged else 0
        store.record_file(manager.name, new_id, "input", item.path, size, replace=False)
        _crash_point("input")


def _move_directory(root: Path, job_id: str, user: str, keep_link: bool) -> bool:
    """Rename ``root/<id>`` to the user's place; True while a link is left at the old name.

    Repeatable after a crash at any point: the temporary link says how far the last try got.
    """
    old = root / job_id
    inside = Path(namespace.USERS_DIRECTORY) / user / job_id  # the link is relative to root
    new = root / inside
    link = root / f"{_MOVING}{job_id}"
    if os.path.lexists(link):
        if not os.path.lexists(old):  # the rename was done, the link not yet in place
            os.replace(link, old)
        else:
            link.unlink()  # crashed before the rename (start over) or after (a leftover)
    if old.is_symlink():
        if keep_link:
            return True
        old.unlink()
        _crash_point("link-removed")
        log.info("TES: %s: the link to %s went with its finished task", old, new)
        return False
    if not old.is_dir():
        return False  # no directory (expired, or on another host's file system)
    if os.path.lexists(new):
        raise FileExistsError(f"{new} exists already; {old} left where it is")
    new.parent.mkdir(parents=True, exist_ok=True)
    if not keep_link:
        os.rename(old, new)
        _crash_point("dir-renamed")
        return False
    os.symlink(inside, link)
    _crash_point("link-made")
    os.rename(old, new)
    _crash_point("dir-renamed")
    os.replace(link, old)
    _crash_point("link-placed")
    return True
