"""Finished-job history for the scale test, made by cloning real finished jobs.

Creating 100,000 finished jobs through the protocol takes Pulsar 0.16 over an hour on two cores
(10,000 took 402 s), and the time says nothing about status or restart at that size. So the scale
test runs a few real jobs on each server through ``pulsar.client`` and then, with the servers
stopped, copies one real job's finished state under fresh ids until N jobs exist:

* its job directory (every file, directory and symlink; the template's id is replaced wherever it
  appears as a whole word, in names and contents, so scripts name their own directory);
* for LWR, its rows in every table of the job store (``jobs.sqlite3``) that has a ``job_id``
  column, with the id replaced in text columns and a fresh queue ``seq`` for ``jobs``. That is
  what LWR itself writes when a job finishes; Pulsar 0.16 keeps no state for a finished job beyond
  its directory (its ``persisted_data`` only indexes active jobs), so a directory is all it needs.

The clones are then checked through the client (a random sample reported ``complete`` before and
after a restart; a sample cleaned), so a clone the servers did not accept fails the run.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: what separates an id from the rest of a name or a path: anything but a word character
_WORD = rb"A-Za-z0-9_"
#: a tmpfs file's data is held in whole pages
PAGE = 4096
#: memory a tmpfs file, directory or symlink costs besides its data (inode and dentry, ~1 KiB)
INODE_BYTES = 1024


def history_id(index: int) -> str:
    """The id of the ``index``-th finished job of the history (real or cloned)."""
    return f"hist{index}"


@dataclass(frozen=True)
class Entry:
    """One thing in a job directory: its relative path and contents, split on the template id.

    ``path`` and ``data`` are stored as pieces; joining them with a new id gives the clone's.
    """

    path: tuple[bytes, ...]
    kind: str  # "dir", "file" or "link"
    mode: int
    data: tuple[bytes, ...] = (b"",)

    def path_for(self, job_id: bytes) -> bytes:
        return job_id.join(self.path)

    def data_for(self, job_id: bytes) -> bytes:
        return job_id.join(self.data)


def split_on_id(data: bytes, job_id: str) -> tuple[bytes, ...]:
    """``data`` cut at each whole-word occurrence of ``job_id`` (``hist9`` is not in ``hist90``)."""
    pattern = rb"(?<![" + _WORD + rb"])" + re.escape(job_id.encode()) + rb"(?![" + _WORD + rb"])"
    return tuple(re.split(pattern, data))


@dataclass(frozen=True)
class Template:
    """A finished job's directory, read once, ready to be written under any number of ids."""

    job_id: str
    entries: tuple[Entry, ...]

    @property
    def data_bytes(self) -> int:
        """Space one clone takes on a tmpfs: its files' data in whole pages."""
        total = 0
        for entry in self.entries:
            if entry.kind == "file":
                total += -(-len(entry.data_for(self.job_id.encode())) // PAGE) * PAGE
        return total

    @property
    def tmpfs_bytes(self) -> int:
        """Memory one clone takes on a tmpfs: its data plus an inode per entry and directory."""
        return self.data_bytes + INODE_BYTES * self.inodes

    @property
    def inodes(self) -> int:
        """Files, directories and symlinks of one clone, its directory included."""
        return len(self.entries) + 1


def room_short(
    need_bytes: int,
    need_inodes: int,
    need_memory: int,
    *,
    free_bytes: int,
    free_inodes: int | None,
    available: int | None,
    margin: int,
) -> str:
    """Why clones needing ``need_bytes`` of space, ``need_inodes`` and ``need_memory`` (their
    data and inodes) would not fit ('' if they do).

    ``free_*`` are the filesystem's (``free_inodes`` None: no inode limit); ``available`` is
    the memory available (None: unknown), of which ``margin`` is left to everything else.
    """
    gib = 1024**3
    if need_bytes > free_bytes:
        return f"{need_bytes / gib:.1f} GiB of clones > {free_bytes / gib:.1f} GiB free"
    if free_inodes is not None and need_inodes > free_inodes:
        return f"{need_inodes:,} inodes of clones > {free_inodes:,} free"
    if available is not None and need_memory + margin > available:
        return (
            f"{need_memory / gib:.1f} GiB of clones + {margin / gib:.0f} GiB margin > "
            f"{available / gib:.1f} GiB available"
        )
    return ""


def read_template(job_directory: Path) -> Template:
    """Everything under ``job_directory`` (named after its job id), parents before children."""
    job_id = job_directory.name
    entries = []
    for current, dirs, files in os.walk(job_directory):
        dirs.sort()
        base = Path(current)
        for name in [*dirs, *sorted(files)]:
            path = base / name
            relative = str(path.relative_to(job_directory)).encode()
            info = path.lstat()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                target = os.readlink(path).encode()
                entries.append(
                    Entry(split_on_id(relative, job_id), "link", mode, split_on_id(target, job_id))
                )
            elif stat.S_ISDIR(info.st_mode):
                entries.append(Entry(split_on_id(relative, job_id), "dir", mode))
            elif stat.S_ISREG(info.st_mode):
                data = split_on_id(path.read_bytes(), job_id)
                entries.append(Entry(split_on_id(relative, job_id), "file", mode, data))
            else:
                raise ValueError(f"cannot clone {path}: not a file, directory or symlink")
    return Template(job_id, tuple(entries))


def write_clone(template: Template, parent: Path, job_id: str) -> None:
    """The template's directory again as ``parent/job_id``; fails if it exists already."""
    new = job_id.encode()
    root = os.fsencode(parent / job_id)
    os.mkdir(root)
    for entry in template.entries:
        path = os.path.join(root, entry.path_for(new))
        if entry.kind == "dir":
            os.mkdir(path, entry.mode)
        elif entry.kind == "link":
            os.symlink(entry.data_for(new), path)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, entry.mode)
            try:
                os.write(fd, entry.data_for(new))
            finally:
                os.close(fd)


def clone_directories(template: Template, parent: Path, ids: Iterable[str]) -> int:
    """Write one clone per id; return how many."""
    count = 0
    for job_id in ids:
        write_clone(template, parent, job_id)
        count += 1
    return count


def clone_rows(database: Path, template_id: str, ids: Sequence[str]) -> dict[str, int]:
    """Copy the template's rows in every table with a ``job_id`` column, once per id.

    Text columns get the id replaced (as in files); ``jobs.seq``, LWR's queue order, continues
    after the largest one. One transaction, with the server stopped. Returns rows per table.
    """
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=10000")
        tables = [
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        counts: dict[str, int] = {}
        db.execute("BEGIN IMMEDIATE")
        for table in tables:
            columns = [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]
            if "job_id" not in columns:
                continue
            names = ", ".join(f'"{c}"' for c in columns)
            rows = db.execute(
                f'SELECT {names} FROM "{table}" WHERE job_id=?', (template_id,)
            ).fetchall()
            next_seq: int | None = None
            if table == "jobs" and "seq" in columns:
                (next_seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()
            marks = ", ".join("?" * len(columns))
            insert = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
            new_rows = []
            for offset, job_id in enumerate(ids):
                for row in rows:
                    seq = None if next_seq is None else next_seq + offset
                    new_rows.append(_row_for(row, columns, template_id, job_id, seq))
            db.executemany(insert, new_rows)
            counts[table] = len(new_rows)
        db.execute("COMMIT")
        return counts
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()


def _row_for(
    row: Sequence[object], columns: Sequence[str], old: str, new: str, seq: int | None
) -> tuple[object, ...]:
    """``row`` for job ``new``: the id replaced in its text, ``seq`` set when one is given."""
    out: list[object] = []
    for column, value in zip(columns, row, strict=True):
        if column == "seq" and seq is not None:
            out.append(seq)
        elif isinstance(value, str):
            out.append(new.encode().join(split_on_id(value.encode(), old)).decode())
        else:
            out.append(value)
    return tuple(out)


def mem_available(meminfo: str = "/proc/meminfo") -> int | None:
    """The kernel's estimate of memory available without swapping (bytes), None if unknown.

    A tmpfs's pages are memory: its free space (half the RAM by default) can exceed what is
    really available while other programs run, so cloning checks this, not ``statvfs``.
    """
    try:
        with open(meminfo) as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def sample(first: int, last: int, count: int, seed: int) -> list[str]:
    """``count`` ids drawn at random (fixed seed) from history jobs ``first``..``last - 1``."""
    if last <= first:
        return []
    indices = random.Random(seed).sample(range(first, last), min(count, last - first))
    return [history_id(i) for i in sorted(indices)]


def levels_up_to(levels: Sequence[int], maximum: int | None) -> tuple[int, ...]:
    """The plan's levels, extended by tenfold steps up to ``maximum`` (``--scale-max``)."""
    out = sorted(set(levels))
    if maximum is None:
        return tuple(out)
    out = [level for level in out if level <= maximum]
    level = out[-1] * 10 if out else 100
    while level < maximum:
        out.append(level)
        level *= 10
    if not out or out[-1] != maximum:
        out.append(maximum)
    return tuple(out)
