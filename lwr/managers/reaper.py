"""Noticing the end of local jobs' processes: one thread for all of them, not a thread per job.

A local job must be seen to end at once (the monitor's timer is a second), so something has to
wait on every job's process. A thread per job did that, but starting a thread is not free on a
loaded machine: ``Thread.start`` waits until the new thread has been scheduled once, and the
submitting request waited with it. On Linux (5.3 and later) a process can be watched through a
*pidfd* instead: :class:`Reaper` opens one for each child right after it is started, adds it to
one ``epoll`` set, and a single thread reaps each child the moment its pidfd becomes readable
(the process has exited). Adding a job is two system calls and no scheduling wait.

Where pidfds are not available (another OS, an older kernel, a sandbox refusing the call) each
child gets its own waiting thread, as before; the callers cannot tell the difference.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

OnExit = Callable[[], None]


class Child(Protocol):
    """What the reaper and the local managers use of a started process: ``Popen``'s face.

    A child that is not this process's own (a pool worker's jobs start under its supervisor
    hub, :mod:`lwr.pool.hub_client`) also has ``open_pidfd()``: a pidfd its starter opened
    while the pid was surely that process's, which :meth:`Reaper.watch` then uses.
    """

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def pidfds_work() -> bool:
    """Whether this process can watch children through pidfds and epoll (probed once)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None or not hasattr(select, "epoll"):
        return False
    try:
        os.close(pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


class Reaper:
    """Calls ``on_exit`` once for each watched child, after reaping it (``Popen.wait``)."""

    def __init__(self, name: str, use_pidfds: bool | None = None) -> None:
        self.name = name
        self.use_pidfds = pidfds_work() if use_pidfds is None else use_pidfds
        self._epoll = select.epoll() if self.use_pidfds else None
        self._watched: dict[int, tuple[Child, OnExit]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def watch(self, child: Child, on_exit: OnExit) -> None:
        """Reap ``child`` when it exits, then call ``on_exit`` (from the reaper's thread).

        Call it right after starting the child: the pidfd must be opened while the child is
        still ours (a zombie at worst), which it is until something waits for it.
        """
        if self._epoll is None or self._closed.is_set():
            self._thread_per_child(child, on_exit)
            return
        open_pidfd = getattr(child, "open_pidfd", None)
        try:
            fd = open_pidfd() if open_pidfd is not None else os.pidfd_open(child.pid)
        except OSError as exc:  # already reaped elsewhere, or refused: fall back for this one
            log.debug("reaper %s: no pidfd for %d (%s); a thread waits", self.name, child.pid, exc)
            self._thread_per_child(child, on_exit)
            return
        with self._lock:
            if self._closed.is_set():  # closed meanwhile: the epoll set may be gone
                os.close(fd)
            else:
                self._watched[fd] = (child, on_exit)
                self._epoll.register(fd, select.EPOLLIN)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name=f"lwr-reaper-{self.name}", daemon=True
                    )
                    self._thread.start()
                return
        self._thread_per_child(child, on_exit)

    def watching(self) -> int:
        """How many children are being watched through pidfds (for tests and diagnostics)."""
        with self._lock:
            return len(self._watched)

    def close(self) -> None:
        """Stop the reaper's thread within a second (the manager stops).

        The jobs' processes go on: a server that starts again finds them by pid. Children
        watched until then are left to the process's exit, as the per-child threads were.
        """
        self._closed.set()

    def _run(self) -> None:
        assert self._epoll is not None
        while not self._closed.is_set():
            # a timeout, not a wake-up descriptor: close() is rare and may take a second
            for fd, _mask in self._epoll.poll(1.0):
                with self._lock:
                    child, on_exit = self._watched.pop(fd)
                self._epoll.unregister(fd)
                os.close(fd)
                self._finish(child, on_exit)
        with self._lock:
            for fd in self._watched:
                os.close(fd)
            self._watched.clear()
            self._epoll.close()

    def _thread_per_child(self, child: Child, on_exit: OnExit) -> None:
        threading.Thread(
            target=self._finish,
            args=(child, on_exit),
            name=f"lwr-wait-{self.name}-{child.pid}",
            daemon=True,
        ).start()

    def _finish(self, child: Child, on_exit: OnExit) -> None:
        child.wait()
        try:
            on_exit()
        except Exception:
            log.exception("reaper %s: handling the end of process %d failed", self.name, child.pid)
