"""The pool consumer thread's wait: for the broker *or* a status update, whichever comes first.

The consumer thread alone uses its channels (kombu's are not thread-safe), so a status update
made on a manager thread waits in the lease table until the consumer thread sends it. That thread
spends its time in ``drain_events``; with a timer as the only way out, every final status (and,
through its ack, the next setup: prefetch = slots) waited for the timer: about a tick per job in
the pool's trace, the largest part of a trivial job's time. :class:`Waker` makes the wait end on
either event: the manager thread writes a byte to a pipe, and the consumer waits in ``select``
on that pipe and the broker connection's socket together.

Only what the socket shows can be waited on so: py-amqp reads a frame's exact size from a plain
TCP socket, so nothing of a further frame sits in user space, but a frame cut by an earlier
timeout (its start kept in the transport's read buffer) or bytes an SSL socket has already
decrypted do not make the socket readable. In those cases, and for any transport without a
socket, the wait falls back to ``drain_events`` with the timer, as before; and a wait that saw
nothing at all still looks once (``drain_events`` for a millisecond), so a frame buffered where
neither check looked is handled a tick later at worst, never stranded.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from typing import Any

#: seconds the safety-net look waits: not 0, with which py-amqp would spin on a frame cut short
#: (a non-blocking socket's EAGAIN in mid-frame is retried at once), only ever this long
GLANCE = 0.001


class Waker:
    """A self-pipe: :meth:`wake` from any thread ends the consumer's current :meth:`wait`."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()  # close-on-exec (PEP 446): no job inherits them
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def wake(self) -> None:
        """Thread-safe; a full pipe already holds a wake-up, so that one is not lost."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"\0")

    def _clear(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read, 4096):
                pass

    def wait(self, connection: Any, timeout: float) -> None:
        """Handle the broker's next event, or return on a wake-up, or after ``timeout`` seconds.

        ``connection`` is the kombu connection; ``TimeoutError`` is swallowed, anything else
        (a broken connection) propagates as from ``drain_events``.
        """
        sock = _socket_of(connection)
        if sock is None or _buffered(connection, sock):
            self._drain(connection, timeout)
            return
        readable, _, _ = select.select([sock.fileno(), self._read], [], [], timeout)
        if self._read in readable:
            self._clear()
        if sock.fileno() in readable:
            self._drain(connection, timeout)  # a frame has begun: it ends within the timeout
        elif not readable:
            self._drain(connection, GLANCE)  # the timer's pass, as before: a safety net only

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)

    @staticmethod
    def _drain(connection: Any, timeout: float) -> None:
        try:
            connection.drain_events(timeout=timeout)
        except TimeoutError:  # socket.timeout is TimeoutError
            pass


def _socket_of(connection: Any) -> socket.socket | None:
    """The broker connection's socket when it is py-amqp's (kombu's ``amqp``/``pyamqp``)."""
    transport = getattr(getattr(connection, "connection", None), "transport", None)
    sock = getattr(transport, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _buffered(connection: Any, sock: socket.socket) -> bool:
    """Whether bytes of the next frame are already read, where ``select`` cannot see them."""
    transport = connection.connection.transport
    if getattr(transport, "_read_buffer", b""):
        return True
    pending = getattr(sock, "pending", None)  # ssl.SSLSocket: decrypted, not yet read
    return bool(pending and pending())
