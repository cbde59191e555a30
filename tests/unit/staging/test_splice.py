"""Kernel socket-to-file copies: exact counts, early close, timeouts, and the fallback signal."""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.staging import splice

pytestmark = pytest.mark.skipif(not splice.available(), reason="os.splice needs Linux")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on loopback (splice reads TCP sockets as the server's do)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname())
        receiver, _ = listener.accept()
    yield sender, receiver
    sender.close()
    receiver.close()


def _send_later(sock: socket.socket, data: bytes, close: bool = False) -> threading.Thread:
    def run() -> None:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_moves_exactly_count_and_leaves_the_rest_on_the_socket(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    sender, receiver = pair
    body, after = os.urandom(3 * splice.PIPE_SIZE + 12345), b"next request"
    thread = _send_later(sender, body + after)
    target = tmp_path / "body"
    seen: list[int] = []
    with open(target, "wb") as out:
        out.write(b"head:")  # spliced bytes land at the file's position
        out.flush()
        moved = splice.receive_into_file(
            receiver.fileno(), out.fileno(), len(body), 5.0, seen.append
        )
    thread.join(5)
    assert moved == len(body) == sum(seen)
    assert target.read_bytes() == b"head:" + body
    receiver.settimeout(5)
    assert receiver.recv(100) == after


def test_an_early_close_returns_what_arrived(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    sender, receiver = pair
    _send_later(sender, b"x" * 1000, close=True).join(5)
    with open(tmp_path / "body", "wb") as out:
        assert splice.receive_into_file(receiver.fileno(), out.fileno(), 5000, 5.0) == 1000
    assert (tmp_path / "body").read_bytes() == b"x" * 1000


def test_a_silent_peer_times_out_and_the_socket_is_restored(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    _sender, receiver = pair
    receiver.settimeout(7.5)
    with open(tmp_path / "body", "wb") as out, pytest.raises(TimeoutError):
        splice.receive_into_file(receiver.fileno(), out.fileno(), 10, 0.2)
    assert receiver.gettimeout() == 7.5
    assert not os.get_blocking(receiver.fileno())
    raw = receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("ll"))
    assert struct.unpack("ll", raw) == (0, 0)


def test_nothing_to_move_touches_nothing(tmp_path: Path) -> None:
    with open(tmp_path / "body", "wb") as out:
        assert splice.receive_into_file(-1, out.fileno(), 0, 1.0) == 0


def test_a_refusing_kernel_is_reported_before_any_byte_moves(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated (this kernel splices TCP): an old kernel or a seccomp filter answers EINVAL or
    EPERM; callers must get SpliceUnavailable, and the bytes must still be on the socket."""
    sender, receiver = pair
    sender.sendall(b"still here")

    def refuse(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(os, "splice", refuse)
    with open(tmp_path / "body", "wb") as out, pytest.raises(splice.SpliceUnavailable):
        splice.receive_into_file(receiver.fileno(), out.fileno(), 10, 1.0)
    receiver.settimeout(5)
    assert receiver.recv(100) == b"still here"
