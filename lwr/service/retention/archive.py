"""Packing a finished job's results into one compressed tar, removing them, putting them back.

What is archived: the ``outputs`` and ``working`` directories (what ``type=output`` and
``type=output_workdir`` downloads read). What stays: everything a status answer reads (the
job's and the tool's stdout/stderr, the return code, ``metadata`` with ``galaxy.json``), and
the inputs. Links a job left are stored as links (``tarfile`` never follows them), so an archive
never holds a file from outside the job.

Every function here can be run again after a crash part-way: a purge moves each directory out of
the way (one rename) before deleting it; a placement extracts into a scratch directory inside the
job, checks every file's size against the archive, and only then swaps the directories in.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from lwr.service.retention.stores import file_sha256

#: the job's sub-directories that an archive holds
ARCHIVED = ("outputs", "working")
_SCRATCH = ".retention-restore"
_OLD = ".retention-old-"


def pack(root: Path, target: Path) -> tuple[int, str]:
    """Write the archive of the job at ``root`` to ``target``; return its size and SHA-256."""
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        for sub in ARCHIVED:
            if os.path.lexists(root / sub):
                tar.add(root / sub, arcname=sub, recursive=True)
    with open(target, "rb+") as handle:
        os.fsync(handle.fileno())
    return target.stat().st_size, file_sha256(target)


def purge(root: Path) -> None:
    """Remove the archived directories' contents, leaving each one empty."""
    for sub in ARCHIVED:
        path, old = root / sub, root / f"{_OLD}{sub}"
        _remove(old)
        if os.path.lexists(path) and not _empty_directory(path):
            os.rename(path, old)
            _remove(old)
        if not os.path.lexists(path):
            path.mkdir()


def place(root: Path, archive: Path) -> None:
    """Put the archive's directories back into the job at ``root`` (replacing what is there)."""
    scratch = root / _SCRATCH
    _remove(scratch)
    scratch.mkdir()
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        tar.extractall(scratch, filter=tarfile.tar_filter)
    _verify(scratch, members)
    for sub in ARCHIVED:
        path, old, new = root / sub, root / f"{_OLD}{sub}", scratch / sub
        _remove(old)
        if os.path.lexists(path):
            os.rename(path, old)
        if os.path.lexists(new):
            os.rename(new, path)
        else:
            path.mkdir()
        _remove(old)
    _remove(scratch)


def leftovers(root: Path) -> list[str]:
    """Scratch names a crash may have left in the job directory (tests look for none)."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".retention-"))


def _verify(scratch: Path, members: list[tarfile.TarInfo]) -> None:
    """Every regular file of the archive is there, at its size; else the restore is retried."""
    for member in members:
        if member.isfile():
            found = scratch / member.name
            if found.is_symlink() or not found.is_file() or found.stat().st_size != member.size:
                raise OSError(f"restored {member.name} does not match the archive")


def _empty_directory(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
