"""Background serving for ``lwr serve --daemon`` (POSIX only; Windows users run a service)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from lwr.errors import ConfigurationError

IS_WINDOWS = sys.platform == "win32"
#: what ``lwr serve --daemon`` / ``--stop-daemon`` say on Windows instead of failing obscurely
#: (there is no fork, and ``os.kill(pid, 0)`` would terminate the process it should only probe)
WINDOWS_MESSAGE = (
    "lwr: --daemon and --stop-daemon are POSIX-only. On Windows run LWR as a service instead: "
    "see 'Running on Windows' in the documentation (docs/windows.md), e.g. with NSSM: "
    "nssm install LWR C:\\lwr\\.venv\\Scripts\\lwr.exe serve C:\\lwr\\server.ini"
)


def detach(pid_file: Path, log_file: Path) -> None:
    """Double-fork into the background, write ``pid_file``, send output to ``log_file``."""
    if not hasattr(os, "fork"):
        raise ConfigurationError("--daemon needs a POSIX system; on Windows run LWR as a service")
    existing = _read_pid(pid_file)
    if existing and _alive(existing):
        raise ConfigurationError(f"already running as pid {existing} ({pid_file})")
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    pid_file.write_text(f"{os.getpid()}\n")
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)


def stop(pid_file: Path, timeout: float = 30.0) -> int:
    """Send SIGTERM to the daemon in ``pid_file`` and wait for it to exit."""
    pid = _read_pid(pid_file)
    if pid is None or not _alive(pid):
        print(f"lwr: no running server in {pid_file}", file=sys.stderr)
        pid_file.unlink(missing_ok=True)
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        print(f"lwr: pid {pid} did not stop within {timeout:.0f}s", file=sys.stderr)
        return 1
    pid_file.unlink(missing_ok=True)
    return 0


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
