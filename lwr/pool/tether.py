"""Ties a pool worker's local jobs to the worker's life: they die when it dies.

A single LWR server's jobs outlive it on purpose (a restarted server adopts them by pid). A pool
worker's must not: its jobs are leased from the broker, and when the worker dies the broker hands
them to another worker at once. So, for pool workers only, every job of a local manager starts
under :mod:`lwr.pool.supervise`, which kills the job's whole process tree the moment the worker
process is gone (why a pipe and a subreaper rather than ``PR_SET_PDEATHSIG``: see there).

The worker's end of the lifeline is one pipe per process, made on first use: the worker keeps its
write end open for as long as it lives (close-on-exec, so no program the worker starts holds it;
only the kernel closes it, at the worker's death) and hands the read end to each supervisor.

Batch-system managers (drmaa, condor, cli) are not tied: their jobs run on other machines under
the batch system's control. Where the supervisor cannot work (Windows) local jobs are not tied
either, and the worker says so at start; see docs/elastic_workers.md.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lwr.pool import supervise

if TYPE_CHECKING:
    from lwr.managers.base import Manager

log = logging.getLogger(__name__)

#: the supervisor's directory: imported from there by a Python without site packages, so that
#: its byte code is cached (a script run by path is compiled anew each time) and starts fast
SUPERVISOR = Path(supervise.__file__).resolve()
_BOOT = (
    f"import sys; sys.path.append({str(SUPERVISOR.parent)!r}); import supervise; "
    "sys.exit(supervise.main(sys.argv[1:]))"
)


def command(lifeline_fd: int, argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` under a supervisor watching ``lifeline_fd``."""
    return [sys.executable, "-I", "-S", "-c", _BOOT, str(lifeline_fd), "--", *argv]


class Lifeline:
    """This process's end of the pipe every job supervisor watches."""

    def __init__(self) -> None:
        self.read_end, self._write_end = os.pipe()  # both close-on-exec (PEP 446)

    def spawn(
        self, argv: list[str], cwd: Path, stdout: Path, stderr: Path
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` under a supervisor leading a new session (as ``process.spawn`` does)."""
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            return subprocess.Popen(
                command(self.read_end, argv),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=(self.read_end,),
            )


_lifeline: Lifeline | None = None
_lock = threading.Lock()


def lifeline() -> Lifeline:
    """The lifeline of this process (one for every manager it serves)."""
    global _lifeline
    with _lock:
        if _lifeline is None:
            _lifeline = Lifeline()
        return _lifeline


def attach(backend: Manager) -> bool:
    """Start ``backend``'s jobs under supervisors, if it is a local manager on a POSIX host.

    Returns whether the jobs are now tied to this worker; says in the log what is and is not.
    """
    from lwr.managers.local import _LocalManager

    if not isinstance(backend, _LocalManager):
        log.warning(
            "manager %s (%s): its jobs are not tied to this pool worker; if the worker dies they "
            "run on under the batch system while the broker hands them to another worker",
            backend.name,
            type(backend).type_name,
        )
        return False
    if os.name != "posix":
        log.warning(
            "manager %s: on this platform a pool worker's jobs are not stopped when it dies; "
            "they run on beside the rerun another worker starts",
            backend.name,
        )
        return False
    backend.spawn = lifeline().spawn
    if sys.platform.startswith("linux"):
        scope = "its whole process tree (Linux child subreaper)"
    else:
        scope = "its process group only (no child subreaper on this platform)"
    log.info("manager %s: each job dies with this pool worker: %s", backend.name, scope)
    return True
