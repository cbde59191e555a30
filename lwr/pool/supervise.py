"""The per-job supervisor of a pool worker: a job's processes die with the worker that runs them.

A pool worker's job is *leased*: when the worker dies, the broker hands the job's setup to
another worker, which runs it again. Processes of the first run that outlived their worker would
then run beside the second one (two runs of one job, both with side effects). So a pool worker
starts each job under this small supervisor: on Linux with pidfds a fork of the worker's one
long-lived supervisor hub (:mod:`lwr.pool.hub`, which calls :func:`supervise`), elsewhere a
process of its own (``python -I -S supervise.py FD -- ARGV...``, run by path with a few built-in
modules only, so it starts fast: no site packages, and ``_signal`` and ``_ctypes`` rather than
their wrappers, whose imports (``enum``, ``struct``) cost more than the rest of the supervisor).
It:

* watches a **lifeline**: the read end (``FD``) of a pipe whose write end only the worker process
  holds (close-on-exec, never closed on purpose; see :mod:`lwr.pool.tether`). The kernel closes
  it when the worker process is gone, however it went (``kill -9``, a crash, ``exit``), and the
  read end then reports end-of-file; a worker that died before the supervisor even looked shows
  end-of-file too, so there is no start-up race. ``PR_SET_PDEATHSIG`` was not used: it fires when
  the *thread* that forked the child exits (a worker starts jobs from its manager threads, which
  may end while the worker lives), and it reaches one process only, not the job's children;
* is a **child subreaper** on Linux (``PR_SET_CHILD_SUBREAPER``): a job's process whose parent
  exits (a double fork, ``setsid cmd &`` in a subshell, a daemon) is re-parented to the
  supervisor instead of to init, so walking the supervisor's descendants in ``/proc`` finds every
  process the job started, also those that left its process group and session;
* when the lifeline ends, sends ``SIGKILL`` to every descendant, repeatedly until none is left
  (a process forking while the walk runs is caught by the next pass), then to its own process
  group, which ends the supervisor too. ``SIGKILL`` and not ``SIGTERM``: the broker has already
  given the setup to another worker, and each moment the old run lives on it may overlap the new;
* when the job's main process ends, ends what it left behind (``SIGTERM``, then ``SIGKILL`` after
  :data:`LEFTOVER_GRACE`) and exits with the job's status, as a batch system ends a job's
  processes with the job; on ``SIGTERM`` (a cancel: the worker signals the whole process group),
  passes it to the descendants that left the group and kills them all after :data:`TERM_GRACE`.

The job runs in the supervisor's process group (the supervisor leads it, in a session of its
own), so the worker's cancel (:func:`lwr.managers.process.kill_group` on the supervisor's pid)
reaches the job as before. Without ``prctl`` or ``/proc`` (not Linux), only the process group is
killed: processes that left it survive their worker; the worker says so in its log at start.
"""

from __future__ import annotations

import os
import select
import sys
import time

TYPE_CHECKING = False  # not from ``typing``, whose import alone costs more than all the rest
if TYPE_CHECKING:
    import signal
    from typing import Any
else:  # not ``signal``: its enum wrapper costs ~10 ms of start-up per job
    import _signal as signal

PR_SET_CHILD_SUBREAPER = 36
#: seconds a cancelled job's escaped processes get between SIGTERM and SIGKILL (the worker's
#: kill_group escalates to SIGKILL of the whole group after 3 s: this comes first)
TERM_GRACE = 2.0
#: seconds the processes a finished job left behind get between SIGTERM and SIGKILL
LEFTOVER_GRACE = 1.0
#: signals the job must find at their defaults (Python ignores SIGPIPE and SIGXFSZ at start)
_RESET = ("SIGPIPE", "SIGXFSZ", "SIGTERM", "SIGINT", "SIGHUP", "SIGCHLD")


def become_subreaper() -> bool:
    """Adopt the job's orphaned descendants (Linux only); whether that worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return int(_prctl()(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError, TypeError):
        return False


def _prctl() -> Any:
    """libc's ``prctl`` through ``_ctypes`` as ``ctypes`` builds it, without ``ctypes``' imports
    (half of this program's start-up); ``ctypes`` itself if that private layer ever changes."""
    try:
        import _ctypes

        class Int(_ctypes._SimpleCData):
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = Int

        class Libc:
            _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]

        return Function(("prctl", Libc()))  # type: ignore[arg-type]
    except (ImportError, AttributeError, TypeError, OSError):
        import ctypes

        return ctypes.CDLL(None).prctl


def descendants(root: int) -> list[int]:
    """The live (non-zombie) descendants of ``root``, from ``/proc``; [] where there is none."""
    children = children_map()
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def children_map() -> dict[int, list[int]]:
    """The live (non-zombie) children of every process, by parent pid, from ``/proc``."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def reap(main: int) -> int | None:
    """Collect every ended child (adopted ones included); the main process's wait status."""
    status = None
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == main:
            status = code


def kill_everything() -> None:
    """The worker is gone: SIGKILL every descendant until none is left, then the group (us)."""
    sigkill_descendants(pause=0.0)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def sigkill_descendants(pause: float) -> None:
    """SIGKILL every descendant, reaping, until none is left (at most 100 rounds, ``pause``
    seconds apart): a process may fork between a walk of /proc and the signal."""
    me = os.getpid()
    for _ in range(100):
        left = descendants(me)
        if not left:
            return
        signal_all(left, signal.SIGKILL)
        reap(-1)
        if pause:
            time.sleep(pause)


def has_children() -> bool:
    """Whether any child is left. As a subreaper, once the job's main process ended every process
    it left behind is a child of ours or a descendant of one: none means nothing to look for."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def end_leftovers(grace: float) -> None:
    """What the finished job left running: SIGTERM, then SIGKILL after ``grace`` seconds."""
    me = os.getpid()
    if not has_children():
        return  # the common case, without a walk through /proc
    left = descendants(me)
    if not left:
        return
    signal_all(left, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap(-1)
        if not descendants(me):
            return
        time.sleep(0.05)
    sigkill_descendants(pause=0.01)


def start(argv: list[str]) -> int:
    """Start the job in this process group, with default signal handling and no blocked signal.

    ``posix_spawnp`` (vfork and exec in glibc) rather than ``fork``: nothing of this process is
    copied, and an exec failure comes back here as an ``OSError``.
    """
    return os.posix_spawnp(
        argv[0],
        argv,
        os.environ,
        setsigdef=[getattr(signal, name) for name in _RESET if hasattr(signal, name)],
        setsigmask=[],
    )


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def supervise(lifelines: list[int], argv: list[str]) -> int:
    """Run ``argv`` until it ends (its exit code) or a lifeline does (everything killed).

    ``lifelines``: the worker's, and under the worker's hub (:mod:`lwr.pool.hub`) the hub's too:
    the job dies with either.
    """
    for lifeline in lifelines:
        os.set_inheritable(lifeline, False)  # the job must not hold it
    become_subreaper()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    cancelled: list[int] = []
    signal.signal(signal.SIGCHLD, lambda *_: None)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: cancelled.append(number))
    try:
        main = start(argv)
    except OSError as exc:
        os.write(2, f"lwr job supervisor: cannot start {argv[0]}: {exc}\n".encode())
        return 127
    deadline: float | None = None
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select([*lifelines, wake_read], [], [], timeout)
        if any(os.read(fd, 64) == b"" for fd in lifelines if fd in readable):
            kill_everything()
        if wake_read in readable:
            try:
                os.read(wake_read, 512)
            except BlockingIOError:
                pass
        status = reap(main)
        if status is not None:
            end_leftovers(0.0 if cancelled else LEFTOVER_GRACE)
            return exit_code(status)
        if cancelled and deadline is None:
            signal_all(descendants(os.getpid()), signal.SIGTERM)
            deadline = time.monotonic() + TERM_GRACE
        elif deadline is not None and time.monotonic() >= deadline:
            signal_all(descendants(os.getpid()), signal.SIGKILL)
            deadline = time.monotonic() + 0.1  # look again soon, without spinning


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        os.write(2, b"usage: supervise.py LIFELINE_FD -- COMMAND [ARG...]\n")
        return 2
    return supervise([int(args[0])], args[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
