"""Fast bodies for LWR's cheroot server: downloads by ``sendfile``, uploads by ``recv_into``.

cheroot offers no file wrapper, so a download would otherwise be read into Python in chunks and
written through cheroot's pure-Python buffered writer — the bottleneck of output staging. This
gateway hands the application a :class:`FileWrapper` and, when it comes back as the response with
a known length over a plain (non-TLS) socket, sends it with ``os.sendfile`` under the response's
deadline (:mod:`lwr.web.send_deadline`). Any other response, and every response over TLS, takes
cheroot's ordinary path.

Uploads likewise: cheroot reads request bodies through a pure-Python buffered reader that
allocates a new ``bytes`` per chunk. For a plain-socket request with a Content-Length the gateway
wraps ``wsgi.input`` in a :class:`BodyReader` whose ``readinto`` fills the caller's buffer straight
from the socket once cheroot's own buffer is drained, and whose ``splice_into`` moves the body to
a file inside the kernel (:mod:`lwr.staging.splice`); both keep cheroot's byte count right so the
connection stays usable for the next request.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, NoReturn

from cheroot import wsgi

from lwr.errors import RequestTimeoutError
from lwr.staging import splice
from lwr.web.send_deadline import sendfile_within

log = logging.getLogger(__name__)


class FileWrapper:
    """PEP 3333's file wrapper: iterable in blocks, and recognisable by :class:`SendfileGateway`."""

    def __init__(self, handle: IO[bytes], block_size: int = 4 * 1024 * 1024) -> None:
        self.handle = handle
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.handle.read(self.block_size)
            if not block:
                return
            yield block

    def close(self) -> None:
        self.handle.close()


class BodyBudget:
    """How long a request body may take: ``body_timeout`` plus one second per ``body_min_rate``
    bytes received, counted from the first read. Unlike a socket timeout it is not renewed by each
    byte, so a client trickling its body cannot hold a worker thread for longer than that."""

    def __init__(self, timeout: float, min_rate: float) -> None:
        self.timeout = timeout
        self.min_rate = min_rate
        self.start = time.monotonic()
        self.received = 0

    def left(self) -> float:
        """Seconds the body may still take (<= 0: late)."""
        return self.start + self.timeout + self.received / self.min_rate - time.monotonic()


class BodyReader:
    """``wsgi.input`` under a :class:`BodyBudget`, with a ``readinto`` that bypasses cheroot's
    Python buffer when it is empty (plain sockets, known length: ``fast``)."""

    def __init__(self, body: Any, req: Any, budget: BodyBudget, fast: bool) -> None:
        self._body = body  # cheroot's KnownLengthRFile (keeps ``remaining``) or ChunkedRFile
        self._req = req
        self._sock = req.conn.socket
        self._budget = budget
        self._base_timeout = req.server.timeout
        self._fast = fast

    @property
    def remaining(self) -> int:
        return int(getattr(self._body, "remaining", 0) or 0)

    def _arm(self) -> None:
        """Bound the next socket wait by what is left of the budget; refuse when none is."""
        left = self._budget.left()
        if left <= 0:
            self._late()
        self._sock.settimeout(min(left, self._base_timeout))

    def _late(self) -> NoReturn:
        self._req.close_connection = True
        raise RequestTimeoutError(
            f"request body not received in time ({self._budget.received} bytes after "
            f"{time.monotonic() - self._budget.start:.0f}s)"
        )

    def _guarded(self, read: Callable[[], Any]) -> Any:
        self._arm()
        try:
            data = read()
        except TimeoutError:
            self._late()
        self._budget.received += data if isinstance(data, int) else len(data)
        return data

    def read(self, size: int | None = None) -> bytes:
        data: bytes = self._guarded(lambda: self._body.read(size))
        return data

    def readline(self, size: int | None = None) -> bytes:
        data: bytes = self._guarded(lambda: self._body.readline(size))
        return data

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with up to its length of body bytes; 0 at the end of the body."""
        if not self._fast:
            view = memoryview(buffer).cast("B")
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        got: int = self._guarded(lambda: self._readinto_fast(buffer))
        return got

    def _readinto_fast(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._body.remaining)
        if wanted <= 0:
            return 0
        stream = self._body.rfile
        if stream.has_data():
            data = stream.read1(wanted)
            got = len(data)
            view[:got] = data
        else:
            got = self._sock.recv_into(view[:wanted])
        self._body.remaining -= got
        return got

    def splice_into(self, fd: int) -> int:
        """Move the rest of the body to ``fd`` (Linux ``splice``); return the bytes moved.

        Whatever cheroot already buffered is written first. Fewer bytes than the body's length
        mean the client closed early, or that the kernel refused splice before taking any byte
        from the socket: either way the caller reads whatever is left the ordinary way.
        """
        if not self._fast:
            return 0
        moved = 0
        stream = self._body.rfile
        while self._body.remaining > 0 and stream.has_data():
            data = stream.read1(self._body.remaining)
            if not data:
                break
            _write_all(fd, data)
            self._body.remaining -= len(data)
            self._budget.received += len(data)
            moved += len(data)
        if self._body.remaining > 0:
            left = self._budget.left()
            if left <= 0:
                self._late()
            try:
                spliced = splice.receive_into_file(
                    self._sock.fileno(),
                    fd,
                    self._body.remaining,
                    min(left, self._base_timeout),
                    progress=self._spliced,
                )
            except splice.SpliceUnavailable as exc:
                log.debug("upload read without splice: %s", exc)
                return moved
            except TimeoutError:
                self._late()
            self._body.remaining -= spliced
            moved += spliced
        return moved

    def _spliced(self, count: int) -> None:
        self._budget.received += count
        if self._budget.left() <= 0:
            raise TimeoutError("request body too slow")

    def drain(self) -> bool:
        """Read and drop what is left of the body within the budget, so the client gets its
        answer (a client still sending when the server closes sees a reset, not the answer) and
        the connection stays usable; False when it must be closed instead."""
        try:
            while self.remaining > 0:
                if not self.read(min(self.remaining, 65536)):
                    return False
        except (RequestTimeoutError, OSError):
            return False
        return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SendfileGateway(wsgi.Gateway_10):
    """cheroot's WSGI 1.0 gateway, plus zero-copy sending of :class:`FileWrapper` responses."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]
        environ: dict[str, Any] = super().get_environ()
        environ["wsgi.file_wrapper"] = FileWrapper
        body = environ.get("wsgi.input")
        sock = getattr(self.req.conn, "socket", None)
        if body is not None and hasattr(body, "read") and sock is not None:
            server = self.req.server
            budget = BodyBudget(
                getattr(server, "body_timeout", 60.0), getattr(server, "body_min_rate", 10240.0)
            )
            fast = (
                hasattr(body, "remaining")
                and hasattr(getattr(body, "rfile", None), "has_data")
                and not isinstance(sock, ssl.SSLSocket)
            )
            environ["wsgi.input"] = BodyReader(body, self.req, budget, fast)
        return environ

    def respond(self) -> None:
        try:
            response = self.req.server.wsgi_app(self.env, self.start_response)
            self._settle_body()
            if not isinstance(response, FileWrapper) or not self._can_sendfile():
                self._respond_with(response)
                return
            try:
                self.req.ensure_headers_sent()
                self.req.conn.wfile.flush()
                count = self.remaining_bytes_out
                sock, budget = self.req.conn.socket, self.req.conn.wfile.budget
                fd = response.handle.fileno()
                sent = sendfile_within(sock, fd, count, budget) if count else 0
                if sent != count:
                    raise ConnectionError(f"sent {sent} of {count} bytes")
                self.remaining_bytes_out = 0
            finally:
                response.close()
        finally:
            sock = getattr(self.req.conn, "socket", None)
            if sock is not None and sock.fileno() >= 0:
                sock.settimeout(self.req.server.timeout)

    def _settle_body(self) -> None:
        """A body the application left unread: drop it within its budget, else close.

        cheroot would otherwise read any rest itself, with a timeout renewed by every byte — the
        one read a slow client could still stretch forever.
        """
        reader = self.env.get("wsgi.input")
        if isinstance(reader, BodyReader) and reader.remaining > 0:
            if not reader.drain():
                self.req.close_connection = True

    def _can_sendfile(self) -> bool:
        sock = getattr(self.req.conn, "socket", None)
        return (
            self.remaining_bytes_out is not None
            and not self.req.sent_headers
            and not self.req.chunked_write
            and sock is not None
            and not isinstance(sock, ssl.SSLSocket)
            and hasattr(os, "sendfile")
            and getattr(self.req.conn.wfile, "budget", None) is not None
        )

    def _respond_with(self, response: Any) -> None:
        """cheroot's own respond(), for a response already obtained from the application."""
        try:
            for chunk in filter(None, response):
                if not isinstance(chunk, bytes):
                    raise ValueError("WSGI applications must yield bytes")
                self.write(chunk)
        finally:
            self.req.ensure_headers_sent()
            if hasattr(response, "close"):
                response.close()
