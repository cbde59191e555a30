"""Fast bodies for LWR's cheroot server: downloads by ``sendfile``, uploads by ``recv_into``.

cheroot offers no file wrapper, so a download would otherwise be read into Python in chunks and
written through cheroot's pure-Python buffered writer — the bottleneck of output staging. This
gateway hands the application a :class:`FileWrapper` and, when it comes back as the response with
a known length over a plain (non-TLS) socket, sends it with ``socket.sendfile`` (``os.sendfile``
underneath). Any other response, and every response over TLS, takes cheroot's ordinary path.

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
from collections.abc import Iterator
from typing import IO, Any

from cheroot import wsgi

from lwr.staging import splice

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


class BodyReader:
    """``wsgi.input`` with a ``readinto`` that bypasses cheroot's Python buffer when it is empty."""

    def __init__(self, known_length: Any, sock: Any) -> None:
        self._body = known_length  # cheroot's KnownLengthRFile: keeps ``remaining`` for cheroot
        self._sock = sock

    def read(self, size: int | None = None) -> bytes:
        data: bytes = self._body.read(size)
        return data

    def readline(self, size: int | None = None) -> bytes:
        data: bytes = self._body.readline(size)
        return data

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with up to its length of body bytes; 0 at the end of the body."""
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
        moved = 0
        stream = self._body.rfile
        while self._body.remaining > 0 and stream.has_data():
            data = stream.read1(self._body.remaining)
            if not data:
                break
            _write_all(fd, data)
            self._body.remaining -= len(data)
            moved += len(data)
        if self._body.remaining > 0:
            try:
                spliced = splice.receive_into_file(
                    self._sock.fileno(), fd, self._body.remaining, self._sock.gettimeout()
                )
            except splice.SpliceUnavailable as exc:
                log.debug("upload read without splice: %s", exc)
                return moved
            self._body.remaining -= spliced
            moved += spliced
        return moved


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
        if (
            hasattr(body, "remaining")
            and hasattr(getattr(body, "rfile", None), "has_data")
            and sock is not None
            and not isinstance(sock, ssl.SSLSocket)
        ):
            environ["wsgi.input"] = BodyReader(body, sock)
        return environ

    def respond(self) -> None:
        response = self.req.server.wsgi_app(self.env, self.start_response)
        if not isinstance(response, FileWrapper) or not self._can_sendfile():
            self._respond_with(response)
            return
        try:
            self.req.ensure_headers_sent()
            self.req.conn.wfile.flush()
            count = self.remaining_bytes_out
            sent = self.req.conn.socket.sendfile(response.handle, 0, count) if count else 0
            if sent != count:
                raise ConnectionError(f"sent {sent} of {count} bytes")
            self.remaining_bytes_out = 0
        finally:
            response.close()

    def _can_sendfile(self) -> bool:
        sock = getattr(self.req.conn, "socket", None)
        return (
            self.remaining_bytes_out is not None
            and not self.req.sent_headers
            and not self.req.chunked_write
            and sock is not None
            and not isinstance(sock, ssl.SSLSocket)
            and hasattr(sock, "sendfile")
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
