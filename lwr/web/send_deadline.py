"""A deadline for sending a response, so a client that reads slowly cannot keep a worker thread.

A download is sent by a worker thread. Each network wait is bounded by the server's ``timeout``,
but every byte the client takes renews it: a client that reads a few KiB every minute holds the
thread for as long as it likes, and a few of them hold every thread. Like a request body's
(:class:`lwr.web.sendfile.BodyBudget`), a response gets a budget that bytes do not renew:
``send_timeout`` seconds plus one second per ``send_min_rate`` bytes the client has taken
(acknowledged, not merely queued in the server's send buffer),
counted from the response's first byte (not from the request: an upload's answer is sent after
its body was read, which may take long). A response that falls behind is dropped: the event is
logged, the socket shut down and the connection reset (what is still queued for the client is
discarded, not trickled out).

Both ways a response leaves LWR go through here: :class:`BudgetedWriter` is the connection's
write stream (headers, JSON answers, and every body over TLS), and :func:`sendfile_within` sends
a download on a plain socket with ``os.sendfile``.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import struct
import time
from typing import Any, NoReturn

from cheroot.makefile import StreamWriter

try:  # POSIX only; elsewhere every byte handed to the kernel counts as taken
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = termios = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: the most a single write hands to a socket, so one TLS record write (all or nothing, under one
#: timeout) never needs more time than the budget the bytes before it have earned
WRITE_PIECE = 64 * 1024


class ResponseBudget:
    """How long a response may take to send: ``timeout`` + bytes taken / ``min_rate`` seconds."""

    def __init__(self, timeout: float, min_rate: float, wait_timeout: float, request: Any) -> None:
        self.timeout = timeout
        self.min_rate = min_rate
        self.wait_timeout = wait_timeout  # the server's ``timeout``: one network wait, at most
        self.request = request  # cheroot's HTTPRequest, named in the log line
        self.start: float | None = None
        self.sent = 0

    def taken(self) -> int:
        """Bytes the client has acknowledged: what waits in our own send buffer (megabytes, on
        a fast link) is not taken yet, and counting it would lend a stalled reader minutes."""
        return max(0, self.sent - unacknowledged(self.request.conn.socket))

    def left(self) -> float:
        """Seconds the response may still take; the clock starts at the first call."""
        now = time.monotonic()
        if self.start is None:
            self.start = now
        return self.start + self.timeout + self.taken() / self.min_rate - now

    def wait(self) -> float:
        """The longest the next network wait may last; drops the response when none is left."""
        left = self.left()
        if left <= 0:
            self.drop("fell behind send_min_rate")
        return min(left, self.wait_timeout)

    def waited_in_vain(self, wait: float) -> None:
        """A wait of ``wait`` seconds ended without room to send: drop the response if its
        budget is spent or the wait was the server's whole ``timeout``; else return, to wait
        again (bytes acknowledged meanwhile may have earned more time)."""
        if self.left() <= 0:
            self.drop("fell behind send_min_rate")
        if wait >= self.wait_timeout:
            self.drop(f"took nothing for {self.wait_timeout:g}s")

    def drop(self, why: str) -> NoReturn:
        """Log, shut the socket down for a reset close, and raise a socket timeout."""
        request = self.request
        conn = request.conn
        elapsed = time.monotonic() - (self.start or time.monotonic())
        path = request.path.decode("latin-1") if isinstance(request.path, bytes) else request.path
        method = request.method.decode("latin-1") if isinstance(request.method, bytes) else ""
        log.warning(
            "dropped a slow reader: %s %s to %s: %d bytes taken in %.1fs (%s; send_timeout %gs "
            "+ 1 s per %g bytes)",
            method,
            path,
            _peer(conn),
            self.taken(),
            elapsed,
            why,
            self.timeout,
            self.min_rate,
        )
        request.close_connection = True
        try:
            # close with a reset: the megabytes still queued for this client are discarded
            # instead of trickled out (a graceful close would send them first)
            conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.socket.shutdown(socket.SHUT_RDWR)  # any later write fails at once
        except OSError:
            pass
        raise TimeoutError("timed out")  # cheroot's way out for a late client: close, no 500


def unacknowledged(sock: Any) -> int:
    """Bytes still in ``sock``'s send queue (Linux ``TIOCOUTQ``); 0 where that cannot be asked."""
    if fcntl is None or termios is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    queued: int = struct.unpack("i", raw)[0]
    return queued


def _peer(conn: Any) -> str:
    address = getattr(conn, "remote_addr", None)
    return str(address) if address else "?"


class _BudgetedSocketIO(socket.SocketIO):
    """A socket's raw stream whose every send waits no longer than the response's budget."""

    budget: ResponseBudget | None = None

    def write(self, b: Any) -> int | None:
        budget = self.budget
        if budget is None:
            return super().write(b)
        sock: Any = self._sock  # type: ignore[attr-defined]
        wait = budget.wait()
        sock.settimeout(wait)
        try:
            sent = super().write(memoryview(b)[:WRITE_PIECE])
        except TimeoutError:
            budget.waited_in_vain(wait)
            return 0  # the writer offers the same bytes again
        budget.sent += sent or 0
        return sent


class BudgetedWriter(StreamWriter):
    """cheroot's connection write stream over :class:`_BudgetedSocketIO`."""

    def __init__(self, sock: Any, mode: str = "wb", bufsize: int = 8192) -> None:
        super().__init__(sock, mode, bufsize)
        self._raw = _BudgetedSocketIO(sock, "wb")  # StreamWriter keeps its raw stream here

    def _flush_unlocked(self) -> None:
        """Send the buffer through a view: cheroot's version copies the whole rest per send."""
        if self.closed:
            raise ValueError("flush of closed file")
        pending = bytes(self._write_buf)  # type: ignore[attr-defined]
        self._write_buf.clear()  # type: ignore[attr-defined]
        view = memoryview(pending)
        while view:
            view = view[self.raw.write(view) or 0 :]

    @property
    def budget(self) -> ResponseBudget | None:
        raw: _BudgetedSocketIO = self._raw
        return raw.budget

    @budget.setter
    def budget(self, value: ResponseBudget | None) -> None:
        raw: _BudgetedSocketIO = self._raw
        raw.budget = value


def sendfile_within(sock: socket.socket, fd: int, count: int, budget: ResponseBudget) -> int:
    """Send ``count`` bytes of ``fd`` from offset 0 with ``os.sendfile``; return the bytes sent.

    ``socket.sendfile`` renews its timeout after every block, which is exactly what a slow reader
    exploits; here each wait for the socket to drain is bounded by what is left of ``budget``.
    The socket has a timeout, so its descriptor is non-blocking (how Python implements timeouts).
    """
    out = sock.fileno()
    poller = select.poll()
    poller.register(out, select.POLLOUT)
    offset = 0
    budget.left()  # start the clock
    while offset < count:
        try:
            sent = os.sendfile(out, fd, offset, min(count - offset, 1 << 30))
        except BlockingIOError:
            wait = budget.wait()
            if not poller.poll(wait * 1000):
                budget.waited_in_vain(wait)
            continue
        if sent == 0:
            break  # the file is shorter than announced; the caller reports it
        offset += sent
        budget.sent += sent
    return offset
