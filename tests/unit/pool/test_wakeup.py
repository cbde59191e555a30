"""The pool consumer's wait ends on a status update from another thread, not only on its timer.

A fake kombu connection over a real socket pair stands in for the broker (the real one is in
tests/integration/amqp/test_pool*.py): what matters here is which way each wait ends.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from lwr.pool.wakeup import GLANCE, Waker


class FakeConnection:
    """kombu's ``Connection`` as far as the wait uses it: ``connection.transport.sock``."""

    def __init__(self, sock: socket.socket | None, buffered: bytes = b"") -> None:
        transport = SimpleNamespace(sock=sock, _read_buffer=buffered)
        self.connection = SimpleNamespace(transport=transport)
        self.drained: list[float] = []

    def drain_events(self, timeout: float) -> None:
        self.drained.append(timeout)
        transport = self.connection.transport
        if transport._read_buffer:
            transport._read_buffer = b""  # the frame's rest would be read after it
        elif transport.sock is not None and timeout > GLANCE:
            transport.sock.recv(4096)  # what py-amqp would read: the frame


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, broker = socket.socketpair()
    yield ours, broker
    ours.close()
    broker.close()


def test_a_wake_from_another_thread_ends_the_wait_without_touching_the_broker(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    waker, connection = Waker(), FakeConnection(pair[0])
    threading.Timer(0.05, waker.wake).start()
    waker.wait(connection, 30.0)  # ended by the wake-up (else: 30 s, then the check fails)
    assert connection.drained == []
    waker.wait(connection, 0.01)  # the wake-up was used up: this one runs out
    assert connection.drained == [GLANCE]
    waker.close()


def test_a_wake_before_the_wait_is_not_lost(pair: tuple[socket.socket, socket.socket]) -> None:
    waker, connection = Waker(), FakeConnection(pair[0])
    for _ in range(100_000):  # more than the pipe holds: the extra wake-ups are dropped
        waker.wake()
    waker.wait(connection, 30.0)
    assert connection.drained == []
    waker.close()


def test_broker_data_is_drained_with_the_timer_as_its_limit(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    waker, connection = Waker(), FakeConnection(pair[0])
    pair[1].sendall(b"frame")
    waker.wait(connection, 30.0)
    assert connection.drained == [30.0]
    waker.close()


def test_a_transport_without_a_socket_waits_in_drain_events_as_before() -> None:
    waker, connection = Waker(), FakeConnection(None)
    waker.wait(connection, 0.01)
    assert connection.drained == [0.01]
    waker.close()


def test_a_frame_begun_in_user_space_is_drained_though_the_socket_is_quiet(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """py-amqp keeps the start of a frame cut by a timeout; select cannot see those bytes."""
    waker, connection = Waker(), FakeConnection(pair[0], buffered=b"\x01\x00")
    waker.wait(connection, 30.0)
    assert connection.drained == [30.0]
    waker.close()
