"""The response deadline on real socket pairs: bytes taken earn time, a slow reader is dropped."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from lwr.web.send_deadline import BudgetedWriter, ResponseBudget, sendfile_within

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.settimeout(30)  # a timeout, as cheroot's sockets have: non-blocking underneath
    yield server, client
    server.close()
    client.close()


def request_on(sock: socket.socket) -> SimpleNamespace:
    conn = SimpleNamespace(socket=sock, remote_addr="peer")
    return SimpleNamespace(conn=conn, path=b"/jobs/j/files", method=b"GET", close_connection=False)


class Trickle:
    """A reader taking 1 KiB every 20 ms: progress all the time, far below the minimum rate."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            try:
                if not self.sock.recv(1024):
                    return
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def test_the_budget_grows_with_the_bytes_taken_and_starts_at_the_first_byte(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    budget = ResponseBudget(2.0, 1000.0, 60.0, request_on(pair[0]))
    assert budget.start is None
    first = budget.left()
    assert budget.start is not None and 1.9 < first <= 2.0
    budget.sent = 5000
    assert budget.left() > first + 4.9


def test_bytes_waiting_in_the_servers_send_buffer_are_not_taken() -> None:
    """Over TCP, what the kernel queued but the client never acknowledged earns no time."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        reader.connect(listener.getsockname())
        server, _ = listener.accept()
    with server, reader:
        server.setblocking(False)
        budget = ResponseBudget(2.0, 1000.0, 60.0, request_on(server))
        try:
            while True:
                budget.sent += server.send(b"x" * 65536)
        except BlockingIOError:
            pass  # the reader's window and our send buffer are full
        assert budget.taken() < budget.sent // 2, (budget.taken(), budget.sent)


def test_a_trickling_reader_of_the_write_stream_is_dropped_though_it_keeps_reading(
    pair: tuple[socket.socket, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    server, client = pair
    request = request_on(server)
    writer = BudgetedWriter(server, "wb")
    writer.budget = ResponseBudget(0.5, 1 << 30, 30.0, request)
    reader = Trickle(client)
    caplog.set_level(logging.WARNING, "lwr.web.send_deadline")
    try:
        with pytest.raises(TimeoutError):
            for _ in range(1000):  # 1 GiB at most; the reader takes about 50 KiB/s
                writer.write(b"x" * (1 << 20))
    finally:
        reader.close()
    assert request.close_connection
    assert "dropped a slow reader: GET /jobs/j/files to peer" in caplog.text
    with pytest.raises(OSError):
        server.send(b"more")  # shut down: nothing else goes out


def test_a_stalled_reader_of_sendfile_is_dropped(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    server, _client = pair
    data = tmp_path / "big"
    with open(data, "wb") as handle:
        handle.truncate(256 << 20)
    request = request_on(server)
    budget = ResponseBudget(0.3, 1 << 30, 30, request)
    with open(data, "rb") as handle, pytest.raises(TimeoutError):
        sendfile_within(server, handle.fileno(), 256 << 20, budget)
    assert request.close_connection


def test_a_reader_keeping_up_gets_every_byte(
    pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    server, client = pair
    payload = bytes(range(256)) * 40000
    (tmp_path / "f").write_bytes(payload)
    received = bytearray()

    def read() -> None:
        while chunk := client.recv(1 << 16):
            received.extend(chunk)

    thread = threading.Thread(target=read)
    thread.start()
    budget = ResponseBudget(5.0, 1024.0, 30.0, request_on(server))
    with open(tmp_path / "f", "rb") as handle:
        assert sendfile_within(server, handle.fileno(), len(payload), budget) == len(payload)
    writer = BudgetedWriter(server, "wb")
    writer.budget = budget
    writer.write(b"tail")
    server.shutdown(socket.SHUT_WR)
    thread.join()
    assert bytes(received) == payload + b"tail"
    assert budget.sent == len(payload) + 4
