"""Ties a pool worker's local jobs to the worker's life: they die when it dies.

A single LWR server's jobs outlive it on purpose (a restarted server adopts them by pid). A pool
worker's must not: its jobs are leased from the broker, and when the worker dies the broker hands
them to another worker at once. So, for pool workers only, every job of a local manager starts
under :mod:`lwr.pool.supervise`, which kills the job's whole process tree the moment the worker
process is gone (why a pipe and a subreaper rather than ``PR_SET_PDEATHSIG``: see there).

The worker's end of the lifeline is one pipe per process, made on first use: the worker keeps its
write end open for as long as it lives (close-on-exec, so no program the worker starts holds it;
only the kernel closes it, at the worker's death) and hands the read end to each supervisor.

Where it can (Linux with pidfds), the worker starts one long-lived supervisor, the *hub*
(:mod:`lwr.pool.hub`, :mod:`lwr.pool.hub_client`), on its first job, and each job's supervisor
is a fork of it rather than a Python interpreter started per job; elsewhere each job starts its
own supervisor process as before. The hub's death takes its jobs with it; :func:`on_hub_lost`
tells the pool consumers, which give up every lease they hold.

Batch-system managers (drmaa, condor, cli) are not tied: their jobs run on other machines under
the batch system's control. Where the supervisor cannot work (Windows) local jobs are not tied
either, and the worker says so at start; see docs/elastic_workers.md.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lwr.managers.reaper import pidfds_work
from lwr.pool import supervise
from lwr.pool.hub_client import HubClient, SupervisedChild

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
        self._hub: HubClient | None = None
        #: seconds a hub may leave a request unanswered (``pool_hub_timeout``; None: the default)
        self.hub_timeout: float | None = None
        self._hub_lock = threading.Lock()
        #: called (from the hub's reader thread) when the hub died: give up every lease
        self.hub_listeners: list[Callable[[], None]] = []

    def spawn_in_hub(
        self, argv: list[str], cwd: Path, stdout: Path, stderr: Path
    ) -> SupervisedChild:
        """Start ``argv`` under a per-job supervisor forked by this worker's hub."""
        with self._hub_lock:
            if self._hub is None or self._hub.lost.is_set():
                self._hub = HubClient(self.read_end, self._hub_lost, self.hub_timeout)
            hub = self._hub
        return hub.spawn(argv, cwd, stdout, stderr)

    def _hub_lost(self) -> None:
        for listener in list(self.hub_listeners):
            listener()

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


def hub_works() -> bool:
    """Whether jobs can start under the hub: Linux, pidfds, descriptors over a socket pair."""
    return (
        sys.platform.startswith("linux")
        and pidfds_work()
        and hasattr(socket, "SOCK_SEQPACKET")
        and hasattr(socket, "CMSG_SPACE")
    )


def on_hub_lost(listener: Callable[[], None]) -> None:
    """Call ``listener`` (from another thread) whenever this worker's hub died."""
    lifeline().hub_listeners.append(listener)


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
    if hub_works():
        backend.spawn = lifeline().spawn_in_hub
        how = "a per-job supervisor forked by the worker's supervisor hub"
    else:
        backend.spawn = lifeline().spawn
        how = "a supervisor process per job"
    if sys.platform.startswith("linux"):
        scope = "its whole process tree (Linux child subreaper)"
    else:
        scope = "its process group only (no child subreaper on this platform)"
    log.info("manager %s: each job dies with this pool worker: %s; %s", backend.name, scope, how)
    return True
