"""Starting, recognising and killing local process groups, on POSIX and Windows.

The only module of the local backend that touches OS-specific process calls. A job is identified by
``"<pid>:<start time>"`` so that, after a restart, a recycled pid is never mistaken for the job.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

IS_WINDOWS = sys.platform == "win32"


def spawn(argv: list[str], cwd: Path, stdout: Path, stderr: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new process group, its streams going to files."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        if IS_WINDOWS:
            return subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,  # type: ignore[attr-defined]
            )
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )


def identity(pid: int) -> str:
    """The persisted external id of a process: pid plus its start time."""
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        started = 0.0
    return f"{pid}:{started:.2f}"


def parse_identity(external_id: str) -> tuple[int, float]:
    pid, _, started = external_id.partition(":")
    return int(pid), float(started or 0)


def is_alive(external_id: str) -> bool:
    """True if the process named by ``external_id`` still runs (and is the same process)."""
    pid, started = parse_identity(external_id)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return not started or abs(process.create_time() - started) < 1.0
    except psutil.Error:
        return False


def kill_group(external_id: str, grace: float = 3.0) -> None:
    """Terminate the job's whole process group; escalate to SIGKILL after ``grace`` seconds."""
    if not is_alive(external_id):
        return
    pid, _ = parse_identity(external_id)
    if IS_WINDOWS:
        _kill_tree_windows(pid, grace)
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_exists(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # the leader may be a zombie waiting for its reaper while the group is otherwise empty
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.info["pid"]) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


def _kill_tree_windows(pid: int, grace: float) -> None:
    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.Error:
        return
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
