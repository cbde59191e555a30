"""Socket-to-file copies inside the kernel with Linux ``splice(2)``: uploads and downloads.

Reading a body with ``recv_into`` and then ``write`` copies every byte twice through user space
(socket buffer -> Python buffer -> page cache). ``splice`` moves the socket's pages into a pipe
without copying them and then from the pipe into the file, one copy in all, the same work as
``cp``. Measured here on 1 GiB over loopback this is what brings a transfer close to ``cp``
(see docs/benchmarks.md); the server uses it for upload bodies and the client for downloads.

The socket must be plain TCP (never TLS: the bytes on the wire are not the file's) and its
timeout still applies: for the copy the descriptor is made blocking and the timeout handed to the
kernel (``SO_RCVTIMEO``), both restored afterwards. On a kernel or sandbox that refuses
``splice`` the first call raises :class:`SpliceUnavailable` before any byte has moved, so the
caller can fall back to its ordinary loop.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: bytes per splice call; a pipe is grown to this when the system allows (pipe-max-size)
PIPE_SIZE = 1024 * 1024
#: errors meaning "splice cannot be used here", as opposed to a failed transfer
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF})
_TIMEVAL = struct.Struct("ll")


class SpliceUnavailable(OSError):
    """``splice`` is not usable for this pair of descriptors; nothing was transferred."""


def available() -> bool:
    """Whether this Python and platform offer ``os.splice`` (Linux, Python >= 3.10)."""
    return hasattr(os, "splice")


def receive_into_file(
    sock_fd: int,
    file_fd: int,
    count: int,
    timeout: float | None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Move up to ``count`` bytes from the socket to ``file_fd``'s position; return how many.

    Fewer than ``count`` only when the peer closed the connection early. ``timeout`` (seconds, or
    None for none) bounds each wait for data, as a socket timeout does; when it expires
    :class:`TimeoutError` is raised.
    """
    if count <= 0:
        return 0
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        chunk = _grow_pipe(write_end)
        with _blocking(sock_fd, timeout):
            moved = 0
            while moved < count:
                got = _from_socket(sock_fd, write_end, min(chunk, count - moved), moved)
                if got == 0:
                    break
                _drain(read_end, file_fd, got)
                moved += got
                if progress is not None:
                    progress(got)
            return moved
    finally:
        os.close(read_end)
        os.close(write_end)


def _from_socket(sock_fd: int, pipe_fd: int, size: int, moved: int) -> int:
    try:
        return os.splice(sock_fd, pipe_fd, size, flags=os.SPLICE_F_MOVE)
    except BlockingIOError:
        raise TimeoutError("timed out waiting for the body") from None
    except OSError as exc:
        if moved == 0 and exc.errno in _UNSUPPORTED:
            raise SpliceUnavailable(exc.errno, f"splice refused: {exc.strerror}") from None
        raise


def _drain(pipe_fd: int, file_fd: int, size: int) -> None:
    """Empty the pipe's ``size`` bytes into the file (a pipe read may be split)."""
    while size:
        written = os.splice(pipe_fd, file_fd, size, flags=os.SPLICE_F_MOVE)
        if written <= 0:
            raise OSError(errno.EIO, "the file took no bytes from the pipe")
        size -= written


def _grow_pipe(fd: int) -> int:
    """Grow the pipe to :data:`PIPE_SIZE` if allowed; return the size it has."""
    try:
        return int(fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE))
    except (OSError, AttributeError):
        # an unprivileged process past pipe-max-size keeps the default pipe
        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)) if hasattr(fcntl, "F_GETPIPE_SZ") else 65536


@contextmanager
def _blocking(fd: int, timeout: float | None) -> Iterator[None]:
    """Make ``fd`` blocking with a kernel receive timeout; restore both afterwards.

    A Python socket with a timeout keeps its descriptor non-blocking and polls in user space,
    which ``splice`` cannot do; the kernel's ``SO_RCVTIMEO`` gives the same bound. The option is
    set through a duplicate descriptor (same socket), so the caller's socket object is untouched.
    """
    handle = socket.socket(fileno=os.dup(fd))
    try:
        before = handle.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _TIMEVAL.size)
        was_blocking = os.get_blocking(fd)
        whole = int(timeout or 0)
        handle.setsockopt(
            socket.SOL_SOCKET,
            socket.SO_RCVTIMEO,
            _TIMEVAL.pack(whole, int(((timeout or 0) - whole) * 1_000_000)),
        )
        os.set_blocking(fd, True)
        try:
            yield
        finally:
            os.set_blocking(fd, was_blocking)
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, before)
    finally:
        handle.close()
