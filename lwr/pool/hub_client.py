"""The worker's side of its hub (:mod:`lwr.pool.hub`): start jobs through it, see them end.

:class:`HubClient` starts the hub (once, on the first job), sends it each job's spawn request
and hands the manager a :class:`SupervisedChild`: the per-job supervisor is the hub's child, not
the worker's, so it is watched through a pidfd the hub opened and passed back (the worker's
reaper waits on it), and its exit status comes on the socket (the job script's ``return_code``
file stays the record, as for any local job). One thread reads the hub's messages.

When the hub is gone (killed, crashed: its socket closes) every job it started is dying with it
(each per-job supervisor watches the hub's lifeline). The client then waits until they have
ended, and tells its listeners, the pool consumers, which give up every lease they hold (their
setups go back to the broker for other workers to run); only then does it answer the pending
spawn requests with an error. A job of a lost hub never shows as ended (:meth:`poll` stays
``None``), so no final status is ever reported for a run its hub's death cut short: such jobs
are given up, never finished here. The next job starts a new hub.

A hub alive but not answering (stopped, stuck, deadlocked) would hold the worker's leases
forever: starts wait for it, its jobs' ends are never told. So a watchdog pings it while jobs
run, and a hub that leaves a request (start or ping) unanswered :data:`HUB_TIMEOUT` seconds is
SIGKILLed (a stopped process too: its descriptors close) and lost as above: its jobs die with
it, every lease goes back, the next job starts a new hub. Killing a hub only slow costs reruns,
never a job run twice at once nor a cut-short run reported.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lwr.managers import process
from lwr.pool import hub

log = logging.getLogger(__name__)

#: seconds a lost hub's jobs get to die (each supervisor kills its tree) before the leases go
LOST_GRACE = 10.0
#: seconds the hub gets to start and say hello
START_TIMEOUT = 30.0
#: seconds the hub gets to answer a request (a start, a ping) before it is declared hung and
#: killed: a fork and a reply take milliseconds, even on a busy machine; overridden by:
HUB_TIMEOUT = 30.0
TIMEOUT_ENV = "LWR_POOL_HUB_TIMEOUT"
#: a send failing so means the hub's end is closed: the hub is gone
_GONE = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF})
_BOOT = (
    f"import sys; sys.path.append({str(Path(hub.__file__).resolve().parent)!r}); import hub; "
    "sys.exit(hub.main(sys.argv[1:]))"
)


class HubLostError(OSError):
    """The hub ended before it answered: the job was not started (its lease is being given up)."""


class SupervisedChild:
    """A job's per-job supervisor as the manager sees it: ``Popen``'s face over a pidfd."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self.returncode: int | None = None
        self.lost = False
        self._ended = threading.Event()
        self._fd_lock = threading.Lock()  # no dup of a descriptor number closed and reused
        #: the job's ``pid:start time`` (see :func:`lwr.managers.process.identity`)
        self.external_id = _identity(pid, pidfd)

    def open_pidfd(self) -> int:
        """A pidfd of the process for the caller to keep (and close); OSError once ended."""
        with self._fd_lock:
            if self._pidfd < 0:
                raise OSError(errno.ESRCH, f"job supervisor {self.pid} has ended")
            return os.dup(self._pidfd)

    def poll(self) -> int | None:
        """Its exit code once the hub reported it; None while it runs, and forever if lost."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Until the hub reports its end (or is lost); the exit code (-SIGKILL when lost)."""
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"job supervisor {self.pid}", timeout or 0.0)
        return -signal.SIGKILL if self.returncode is None else self.returncode

    def ended(self, status: int) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        self._close()

    def give_up(self) -> None:
        self.lost = True
        self._close()

    def gone_within(self, timeout: float) -> bool:
        """Whether the process has ended (or ends within ``timeout`` seconds)."""
        try:
            fd = self.open_pidfd()
        except OSError:
            return True
        try:
            readable, _, _ = select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        return bool(readable)

    def _close(self) -> None:
        with self._fd_lock:
            fd, self._pidfd = self._pidfd, -1
            if fd >= 0:
                os.close(fd)
        self._ended.set()


#: numbers the ids of processes ended before their start time was read (see _identity)
_ended_serial = itertools.count(1)


def _identity(pid: int, pidfd: int) -> str:
    """``pid:start time``, read while the pidfd says the process lives (so the pid is its own).

    A process that ended first may be reaped by the hub and its pid reused at once: its id
    gets a negative start time, which no live process matches (so it is never signalled), and
    a serial, so that two such ids never collide.
    """
    external_id = process.identity(pid)
    readable, _, _ = select.select([pidfd], [], [], 0)
    return f"{pid}:-{next(_ended_serial)}" if readable else external_id


def hub_timeout(environ: Mapping[str, str] | None = None, configured: float = HUB_TIMEOUT) -> float:
    """``configured`` (the ``pool_hub_timeout`` option, :data:`HUB_TIMEOUT` by default), unless
    ``$LWR_POOL_HUB_TIMEOUT`` is a positive number: the variable wins, so a test or an operator
    chasing a problem can change one worker without editing the shared configuration."""
    value = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "")
    try:
        seconds = float(value) if value else configured
    except ValueError:
        seconds = -1.0
    if 0 < seconds < float("inf"):
        return seconds
    log.warning(
        "$%s=%r is not a positive number of seconds: %s used", TIMEOUT_ENV, value, configured
    )
    return configured


class _Pending:
    def __init__(self) -> None:
        self.sent = time.monotonic()  # when the request was made (before its send)
        self.done = threading.Event()
        self.child: SupervisedChild | None = None
        self.error: OSError | None = None


class HubClient:
    """One hub process and the socket to it; thread-safe :meth:`spawn`."""

    def __init__(
        self, lifeline_fd: int, on_lost: Callable[[], None], timeout: float | None = None
    ) -> None:
        self.timeout = hub_timeout() if timeout is None else timeout
        self.hung = False
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._children: dict[int, SupervisedChild] = {}
        self.lost = threading.Event()
        self._closing = False
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOT, str(lifeline_fd), str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(lifeline_fd, theirs.fileno()),
            )
        # our unreaped child, so surely the hub: the watchdog's kill can never hit a reused pid
        self._hub_pidfd = os.pidfd_open(self.process.pid)
        self._pidfd_lock = threading.Lock()
        self._sock.settimeout(START_TIMEOUT)
        try:
            hello, _ = hub.receive(self._sock, 0)
        except OSError:
            hello = None
        self._sock.settimeout(None)
        if hello is None or hello.get("kind") != "hello":
            self.process.kill()
            self.process.wait()
            os.close(self._hub_pidfd)
            raise OSError(errno.ECHILD, "the pool worker's job supervisor did not start")
        self.subreaper = bool(hello.get("subreaper"))
        self._reader = threading.Thread(target=self._read, name="lwr-pool-hub", daemon=True)
        self._reader.start()
        threading.Thread(target=self._watch, name="lwr-pool-hub-watch", daemon=True).start()
        log.info("pool job supervisor (hub) started as pid %d", self.process.pid)

    def spawn(self, argv: list[str], cwd: Path, stdout: Path, stderr: Path) -> SupervisedChild:
        """Start ``argv`` under a per-job supervisor of the hub (as ``process.spawn`` would)."""
        pending = _Pending()
        with self._lock:
            request_id = next(self._ids)
            self._pending[request_id] = pending
        request = {
            "kind": "spawn",
            "id": request_id,
            "argv": list(argv),
            "cwd": str(cwd),
            "env": dict(os.environ),
        }
        try:
            with open(stdout, "wb") as out, open(stderr, "wb") as err:
                if self.lost.is_set():
                    raise HubLostError(errno.EPIPE, "the pool worker's job supervisor is gone")
                hub.send(self._sock, request, [out.fileno(), err.fileno()])
        except OSError as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            if isinstance(exc, HubLostError) or exc.errno in _GONE:
                # the hub is gone: the caller hears of it only once every lease was given up
                # (a failed job's final status is then never sent)
                self.wait_handled(LOST_GRACE + 10)
            raise
        pending.done.wait()
        if pending.error is not None:
            raise pending.error  # a HubLostError only after the leases were given up
        assert pending.child is not None
        return pending.child

    def wait_handled(self, timeout: float) -> bool:
        """Whether the hub's loss was handled (leases given up, waiters told) within ``timeout``."""
        self._reader.join(timeout)
        return not self._reader.is_alive()

    def close(self) -> None:
        """End the hub and whatever still runs under it, without a loss (tests, shutdown)."""
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # the hub kills everything and exits
        except OSError:
            pass
        self.wait_handled(LOST_GRACE + 10)

    # -- the watchdog thread -----------------------------------------------------------------

    def _watch(self) -> None:
        """Until the hub is lost: kill it once a request of ours waited :attr:`timeout` for it.

        While jobs run and nothing else is waiting, a ping every half timeout stands in for a
        request (a hub hung then would never report its jobs' ends): one small message per
        15 s and worker, none while the worker is idle.
        """
        last_ping = time.monotonic()
        while not self.lost.wait(self.timeout / 4):
            now = time.monotonic()
            with self._lock:
                oldest = min((p.sent for p in self._pending.values()), default=None)
                ping = oldest is None and bool(self._children)
            if oldest is not None and now - oldest > self.timeout:
                self.kill_hung(now - oldest)
                return
            if ping and now - last_ping >= self.timeout / 2:
                last_ping = now
                self._ping()

    def _ping(self) -> None:
        pending = _Pending()
        with self._lock:
            request_id = next(self._ids)
            self._pending[request_id] = pending
        try:  # never blocks: a hub that reads nothing fills its socket; it then times out
            hub.send(self._sock, {"kind": "ping", "id": request_id}, flags=socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
        except OSError:  # gone: the reader sees it (and answers every waiter)
            with self._lock:
                self._pending.pop(request_id, None)

    def kill_hung(self, waited: float) -> None:
        """Declare the hub hung and SIGKILL it: the reader then handles it as a lost hub."""
        with self._pidfd_lock:
            if self._hub_pidfd < 0 or self.lost.is_set():
                return
            self.hung = True
            why = f"a request waited {waited:.1f}s (limit {self.timeout}s)"
            log.error(
                "pool job supervisor (hub, pid %d) hangs (%s): killing it", self.process.pid, why
            )
            try:
                signal.pidfd_send_signal(self._hub_pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- the reader thread -------------------------------------------------------------------

    def _read(self) -> None:
        """Until the hub is gone (or this thread cannot follow it any more: then it is ended)."""
        try:
            while True:
                message, fds = hub.receive(self._sock, 1)
                if message is None:
                    break
                self._handle(message, fds)
        except Exception:
            log.exception("pool job supervisor (hub): following it failed; ending it")
        finally:
            self._lose()

    def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        kind = message.get("kind")
        if kind == "started" and len(fds) == 1:
            pid = int(message["pid"])
            child = SupervisedChild(pid, fds[0])
            with self._lock:
                self._children[pid] = child
                pending = self._pending.pop(int(message["id"]), None)
            if pending is not None:
                pending.child = child
                pending.done.set()
            return
        for fd in fds:
            os.close(fd)
        if kind == "started":  # a job the worker could not watch: end the hub, and the job
            raise RuntimeError(f"the hub started a job without a pidfd ({len(fds)} descriptors)")
        if kind == "exit":
            with self._lock:
                ended = self._children.pop(int(message["pid"]), None)
            if ended is not None:
                ended.ended(int(message["status"]))
        elif kind == "failed":
            with self._lock:
                pending = self._pending.pop(int(message["id"]), None)
            if pending is not None:
                code = int(message.get("errno") or errno.EINVAL)
                pending.error = OSError(code, str(message.get("error")), message.get("filename"))
                pending.done.set()
        elif kind == "pong":
            with self._lock:
                answered = self._pending.pop(int(message["id"]), None)
            if answered is not None:
                answered.done.set()
        else:
            log.warning("pool job supervisor (hub): unexpected message %r", kind)

    def _lose(self) -> None:
        """The hub is gone: its jobs die; the leases are given up before anyone hears of it."""
        self.lost.set()
        if self.process.poll() is None:  # not dead but unreadable: end it, its jobs with it
            self.process.kill()
        status = self.process.wait()
        with self._pidfd_lock:
            os.close(self._hub_pidfd)
            self._hub_pidfd = -1
        with self._lock:
            children = list(self._children.values())
            self._children.clear()
            pending = list(self._pending.values())
            self._pending.clear()
        log.log(
            logging.INFO if self._closing else logging.ERROR,
            "pool job supervisor (hub, pid %d) ended (status %s%s) with %d job(s) running; they "
            "die with it and this worker gives up every job it holds",
            self.process.pid,
            status,
            ", killed as hung" if self.hung else "",
            len(children),
        )
        deadline = time.monotonic() + LOST_GRACE
        survivors = [
            child.pid
            for child in children
            if not child.gone_within(max(0.0, deadline - time.monotonic()))
        ]
        for pid in survivors:  # a supervisor stuck (stopped?): its group at least
            log.error("job supervisor %d outlived its hub by %.0fs; killing it", pid, LOST_GRACE)
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            if not self._closing:
                self._on_lost()
        except Exception:
            log.exception("pool job supervisor (hub): giving up the leases failed")
        for child in children:
            child.give_up()
        for waiting in pending:
            waiting.error = HubLostError(errno.EPIPE, "the pool worker's job supervisor is gone")
            waiting.done.set()
        self._sock.close()
