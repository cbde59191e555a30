"""Where each manager's job directories live, and the move from LWR's old layout to Pulsar's.

Pulsar puts every job of its default manager at ``<staging_directory>/<job_id>``, and a Galaxy
message-queue destination written for Pulsar says so in its ``jobs_directory``. LWR follows that
layout for the manager named ``_default_``. A named manager keeps its own directory,
``<staging_directory>/<name>/<job_id>`` unless its ``staging_directory`` option says otherwise;
so that it can never share a directory with a job of the default manager, a default-manager job
whose id is a configured manager's name is refused (see :func:`check_default_job_id`).

Older LWR releases put the default manager's jobs one level down, at
``<staging_directory>/_default_/<job_id>``. :func:`migrate_legacy_default` moves them up at
start-up, one ``rename`` per job (atomic, and cheap on one filesystem). A job that was still
running keeps working: its job script and command line name absolute paths under the old
directory, so the old name is left behind as a symlink to the new place until the job is final
(the next start removes it). Every step can be repeated after a crash mid-way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection
from pathlib import Path

from lwr.config import DEFAULT_MANAGER
from lwr.errors import InvalidRequestError
from lwr.managers.directory import JOB_ID_PATTERN

log = logging.getLogger(__name__)

#: the default manager's directory in LWR releases before Pulsar's layout
LEGACY_DEFAULT_DIRECTORY = DEFAULT_MANAGER
_MOVING = ".moving-"


def staging_root(staging_directory: Path, manager: str, explicit: Path | None) -> Path:
    """The directory that holds ``manager``'s job directories."""
    if explicit is not None:
        return explicit
    if manager == DEFAULT_MANAGER:
        return staging_directory
    return staging_directory / manager


def check_default_job_id(job_id: str, reserved: Collection[str]) -> None:
    """Refuse a default-manager job id that names a named manager's directory."""
    if job_id in reserved:
        raise InvalidRequestError(
            f"job id {job_id!r} is refused: the staging directory's {job_id!r} sub-directory "
            "belongs to a named job manager of this server; use another id"
        )


def migrate_legacy_default(staging_directory: Path, is_final: Callable[[str], bool]) -> int:
    """Move ``<staging>/_default_/<id>`` to ``<staging>/<id>``; return how many moved.

    ``is_final(job_id)`` tells whether a job has finished (or is unknown): only those lose the
    symlink at the old place, because nothing runs there any more.
    """
    legacy = staging_directory / LEGACY_DEFAULT_DIRECTORY
    if not legacy.is_dir() or legacy.is_symlink():
        return 0
    moved = 0
    for entry in sorted(os.listdir(legacy)):
        if entry.startswith(_MOVING):
            _finish_move(legacy, entry[len(_MOVING) :])
        elif entry.startswith(".deleting-"):
            # half-deleted by a clean before the upgrade: the manager's start() finishes these
            os.replace(legacy / entry, staging_directory / entry)
        elif JOB_ID_PATTERN.match(entry) and ".." not in entry:
            moved += _move_job(legacy, staging_directory, entry)
    for entry in sorted(os.listdir(legacy)):
        path = legacy / entry
        if path.is_symlink() and is_final(entry):
            path.unlink()
    try:
        legacy.rmdir()
        log.info("layout: removed the old default-manager directory %s", legacy)
    except OSError:
        log.info("layout: %s keeps links to jobs still running; removed on a later start", legacy)
    return moved


def _move_job(legacy: Path, staging_directory: Path, job_id: str) -> int:
    """One job: link at a temporary name, rename the directory up, put the link in its place."""
    old, new = legacy / job_id, staging_directory / job_id
    if old.is_symlink() or not old.is_dir():
        return 0
    if os.path.lexists(new):
        log.error(
            "layout: cannot move job directory %s to %s: something is already there; "
            "left where it is (move one of them away and restart)",
            old,
            new,
        )
        return 0
    link = legacy / f"{_MOVING}{job_id}"
    if os.path.lexists(link):
        link.unlink()
    os.symlink(new, link)
    os.rename(old, new)
    os.replace(link, old)
    log.info("layout: moved job directory %s to %s (Pulsar's layout)", old, new)
    return 1


def _finish_move(legacy: Path, job_id: str) -> None:
    """Complete a move a crash interrupted, whichever step it stopped after."""
    link, old = legacy / f"{_MOVING}{job_id}", legacy / job_id
    if old.is_symlink():
        link.unlink()  # the move was complete; the temporary link is a leftover
    elif old.is_dir():
        link.unlink()  # crashed before the rename: _move_job starts over
        _move_job(legacy, legacy.parent, job_id)
    else:
        os.replace(link, old)  # crashed after the rename
        log.info("layout: finished moving job %s to %s", job_id, legacy.parent / job_id)
