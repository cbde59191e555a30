"""Moving one file body over an open HTTP connection, in either direction, at disk speed.

Shared by the client (:mod:`lwr.client.transport`) and the server's own staging
(:mod:`lwr.staging.transfer`, for ``remote_transfer``).

Over plain TCP on Linux no byte passes through Python: an upload leaves with ``sendfile`` (file
pages straight to the socket) and a download arrives with ``splice`` (socket to pipe to file,
:mod:`lwr.staging.splice`), one copy in all as with ``cp``. Over TLS (the socket's bytes are not
the file's) or where the kernel refuses, the body passes through one reused buffer.

Failures worth another attempt (the file changed size while being sent, a body shorter than
announced) raise :class:`lwr.staging.transfer.TransientError`; the transport decides on retries.
A download lands in a temporary file beside its target, renamed into place only when complete.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lwr.staging import digest, splice

log = logging.getLogger(__name__)


class TransientError(Exception):
    """A transfer failure worth retrying (the client's transport and server staging share it)."""


#: called with the number of bytes each step moved (a progress bar's ``update``)
Progress = Callable[[int], None]


def no_progress(count: int) -> None:
    """Progress nobody watches."""


def send_file(
    sock: socket.socket,
    body: Any,
    size: int,
    chunk: int,
    progress: Progress = no_progress,
    start: int = 0,
) -> None:
    """Send ``size`` bytes of the open file ``body``, from byte ``start``, on ``sock``.

    A socket with a Python timeout is non-blocking underneath, and ``socket.sendfile`` then polls
    between every few hundred KiB: measured here at less than half the speed of a blocking
    send. So the socket blocks while the body goes out, and the kernel enforces the timeout
    instead (``SO_SNDTIMEO``).
    """
    # bytes go around Python only on a plain socket: not TLS, nor TLS inside a proxy's TLS
    plain = isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket)
    if not plain or not hasattr(os, "sendfile"):
        buffer = memoryview(bytearray(chunk))
        if start:
            body.seek(start)
        offset = 0
        while offset < size:
            count = body.readinto(buffer[: min(chunk, size - offset)])
            if not count:
                raise TransientError(f"file shrank to {offset} bytes while being sent")
            sock.sendall(buffer[:count])
            offset += count
            progress(count)
        return
    timeout = sock.gettimeout()
    sock.settimeout(None)
    _kernel_timeout(sock, socket.SO_SNDTIMEO, timeout)
    try:
        offset = 0
        while offset < size:
            try:
                sent = os.sendfile(sock.fileno(), body.fileno(), start + offset, size - offset)
            except BlockingIOError:
                raise TimeoutError("timed out sending the body") from None
            if sent <= 0:
                raise TransientError(f"file shrank to {offset} bytes while being sent")
            offset += sent
            progress(sent)
    finally:
        _kernel_timeout(sock, socket.SO_SNDTIMEO, 0)
        sock.settimeout(timeout)


def receive_file(
    response: http.client.HTTPResponse,
    target: Path,
    chunk: int,
    timeout: float | None,
    progress: Progress = no_progress,
    *,
    splice_ok: bool,
    sha256: bytes | None = None,
) -> int:
    """Store the body of ``response`` at ``target`` atomically; return its size.

    ``splice_ok`` says the connection is plain TCP; ``sha256``, when given, is what the received
    bytes must hash to before they may replace ``target``. The caller must not reuse the
    connection when this raises: it may be mid-body.
    """
    expected = announced(response)
    fd, tmp_name = tempfile.mkstemp(prefix=".lwr-download-", dir=target.parent)
    received = 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            if expected and splice_ok and splice.available():
                received = _splice_body(response, out, timeout, progress)
            view = memoryview(bytearray(chunk))
            while True:
                count = response.readinto(view)
                if not count:
                    break
                out.write(view[:count])
                received += count
                progress(count)
            written = os.fstat(out.fileno()).st_size
        if expected is not None and received != expected:
            raise TransientError(f"received {received} of the {expected} bytes announced")
        if written != received:
            raise TransientError(f"wrote {written} bytes to disk but received {received}")
        if sha256 is not None and digest.sha256_file(tmp_name) != sha256:
            raise TransientError("the SHA-256 of the received file differs from the server's")
        os.replace(tmp_name, target)
    except BaseException:
        discard(tmp_name)
        raise
    return received


def discard(path: str) -> None:
    """Remove a half-written temporary file, if it is still there."""
    try:
        os.unlink(path)
    except OSError:
        pass


def announced(response: http.client.HTTPResponse) -> int | None:
    """The body's Content-Length, if the server sent a valid one."""
    length = response.getheader("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def _splice_body(
    response: http.client.HTTPResponse, out: Any, timeout: float | None, progress: Progress
) -> int:
    """Move a plain-HTTP body with a known length to ``out`` inside the kernel.

    http.client may already hold the first bytes of the body in its buffer: those are written
    first, then the rest is spliced from the socket and the response told it is consumed, so the
    kept-alive connection stays usable. Returns the bytes moved; whatever is left (nothing,
    unless splice is refused here) the caller reads the ordinary way.
    """
    fp = response.fp
    if fp is None or response.length is None:
        return 0
    head = response.read(min(len(fp.peek(1)), response.length))
    out.write(head)
    progress(len(head))
    if not response.length:  # a small body arrives whole with the headers
        return len(head)
    try:
        moved = splice.receive_into_file(
            response.fileno(), out.fileno(), response.length, timeout, progress
        )
    except splice.SpliceUnavailable as exc:
        log.debug("downloading without splice: %s", exc)
        return len(head)
    response.length -= moved
    received = len(head) + moved
    if response.length:
        expected = received + response.length
        raise TransientError(f"received {received} of the {expected} bytes announced")
    return received


def _kernel_timeout(sock: socket.socket, option: int, seconds: float | None) -> None:
    """Set a kernel send/receive timeout (0 or None: none) on a blocking socket."""
    whole = int(seconds or 0)
    sock.setsockopt(
        socket.SOL_SOCKET, option, struct.pack("ll", whole, int(((seconds or 0) - whole) * 1e6))
    )
