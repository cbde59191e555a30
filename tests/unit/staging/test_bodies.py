"""Body movers on real sockets: sendfile and its chunked fallback, a shrinking file."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.staging import bodies
from lwr.staging.bodies import TransientError

DATA = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname())
        receiver, _ = listener.accept()
    sender.settimeout(5.0)
    yield sender, receiver
    sender.close()
    receiver.close()


def _drain(sock: socket.socket, into: bytearray) -> threading.Thread:
    def run() -> None:
        while chunk := sock.recv(1 << 20):
            into.extend(chunk)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture(params=["sendfile", "chunks"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Bodies sent by the kernel, or in chunks as on a system without ``os.sendfile``."""
    if request.param == "chunks":
        monkeypatch.delattr(os, "sendfile")
    return str(request.param)


def test_send_file_sends_every_byte_and_restores_the_timeout(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path, way: str
) -> None:
    sender, receiver = pair
    source = tmp_path / "in.dat"
    source.write_bytes(DATA)
    got = bytearray()
    thread = _drain(receiver, got)
    counted: list[int] = []
    with open(source, "rb") as body:
        bodies.send_file(sender, body, len(DATA), 1024 * 1024, counted.append)
    sender.shutdown(socket.SHUT_WR)
    thread.join(5)
    assert bytes(got) == DATA
    assert sum(counted) == len(DATA)
    assert sender.gettimeout() == 5.0


def test_a_file_shorter_than_announced_is_a_transient_error(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path, way: str
) -> None:
    sender, receiver = pair
    source = tmp_path / "in.dat"
    source.write_bytes(b"short")
    _drain(receiver, bytearray())
    with open(source, "rb") as body, pytest.raises(TransientError, match="shrank to 5 bytes"):
        bodies.send_file(sender, body, 100, 1024 * 1024)
