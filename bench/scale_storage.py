"""Where the scale test's servers keep their jobs, and how fast that place is emptied afterwards.

Job directories go on a tmpfs: this machine's ext4 root is mounted with ``discard``, where
deleting tens of thousands of job directories takes minutes. A tmpfs has an inode limit as well
as a size, though: Debian's ``/dev/shm`` allows about 3 million inodes on a 24 GiB machine, and
100,000 finished Pulsar jobs alone need 3.1 million (31 files and directories each; LWR's take
18). So, in order of preference:

1. ``LWR_BENCH_SCALE_DIR`` or ``/dev/shm`` when it has the space and the inodes;
2. a tmpfs of the test's own, mounted for it when the bench runs as root (its size and inode
   count fitted to the largest level) and unmounted at the end: one ``umount`` frees every job at
   once, so the clean-up does not grow with millions of ``unlink`` calls;
3. the scratch directory on disk (slow to delete; said so in the JSON).

A bench killed before its end cannot unmount its tmpfs, which would then hold its gigabytes of
memory until a reboot. Each mount therefore carries the bench's pid in its source name
(``lwr-bench-scale-<pid>``), and :func:`reclaim_stale` (run by :func:`choose`) unmounts the ones
whose bench is gone, leaving a concurrent live bench's mount alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

#: tmpfs space a finished job of both servers takes (LWR 12 KiB, Pulsar 52 KiB), with room
BYTES_PER_JOB = 80 * 1024
#: files and directories a finished job of both servers takes (LWR 18, Pulsar 31), with room
INODES_PER_JOB = 60
#: the source name of a tmpfs this module mounts; the owning bench's pid follows it
MOUNT_SOURCE = "lwr-bench-scale"


@dataclass
class Storage:
    """The directory the scale servers live in, and how to empty it."""

    root: Path
    what: str
    #: the tmpfs this test mounted itself (unmounted by :meth:`remove`), or None
    mount: Path | None = None

    def remove(self, trees: list[Path]) -> float:
        """Delete everything; seconds taken. ``trees`` (one per server) go in parallel."""
        began = time.perf_counter()
        if self.mount is not None:
            subprocess.run(["umount", str(self.mount)], check=True)
            self.mount.rmdir()
        else:
            processes = [subprocess.Popen(["rm", "-rf", "--", str(tree)]) for tree in trees]
            for process in processes:
                process.wait()
            subprocess.run(["rm", "-rf", "--", str(self.root)], check=False)
        return round(time.perf_counter() - began, 2)


def needs(largest: int) -> tuple[int, int]:
    """(bytes, inodes) the test's directories need at ``largest`` finished jobs per server."""
    return max(1024**3, largest * BYTES_PER_JOB), largest * INODES_PER_JOB + 100_000


def has_room(path: str, need_bytes: int, need_inodes: int) -> bool:
    """Whether the filesystem of ``path`` has the space and the inodes (0 total = no limit)."""
    stat = os.statvfs(path)
    space = stat.f_bavail * stat.f_frsize >= need_bytes
    inodes = stat.f_files == 0 or stat.f_favail >= need_inodes
    return space and inodes


def stale_mounts(mounts: str, alive: Callable[[int], bool]) -> list[Path]:
    """Mount points of this module's tmpfs (in ``/proc/mounts`` text) whose bench is gone."""
    stale = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[2] != "tmpfs":
            continue
        owner = re.fullmatch(rf"{MOUNT_SOURCE}-(\d+)", fields[0])
        if owner is not None and not alive(int(owner.group(1))):
            # /proc/mounts escapes blanks and backslashes in octal
            stale.append(Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[1])))
    return stale


def reclaim_stale() -> list[Path]:
    """Unmount (and remove) the tmpfs left by benches killed before their end."""
    if os.geteuid() != 0:
        return []
    reclaimed = []
    for mount in stale_mounts(Path("/proc/mounts").read_text(), psutil.pid_exists):
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode == 0:
            try:
                mount.rmdir()
            except OSError:
                pass
            reclaimed.append(mount)
    return reclaimed


def choose(scratch: Path, largest: int) -> Storage:
    """A fresh directory for the scale servers (see the module's docstring for the order)."""
    reclaim_stale()
    need_bytes, need_inodes = needs(largest)
    for candidate in (os.environ.get("LWR_BENCH_SCALE_DIR"), "/dev/shm"):
        if not candidate or not os.path.isdir(candidate) or not os.access(candidate, os.W_OK):
            continue
        if has_room(candidate, need_bytes, need_inodes):
            root = Path(tempfile.mkdtemp(prefix="lwr-bench-scale-", dir=candidate))
            return Storage(root, candidate)
    if os.geteuid() == 0:
        mount = Path(tempfile.mkdtemp(prefix="lwr-bench-scale-mnt-", dir=scratch))
        options = f"size={need_bytes},nr_inodes={need_inodes},mode=0700"
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, f"{MOUNT_SOURCE}-{os.getpid()}", str(mount)],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            what = f"a tmpfs of its own ({options}), unmounted at the end"
            return Storage(mount, what, mount)
        mount.rmdir()
    return Storage(scratch / "scale", f"{scratch} (no tmpfs with room)")
