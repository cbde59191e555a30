"""LwrConnection's own constructor must set exactly what cheroot's sets (less two caches).

It skips cheroot's ``HTTPConnection.__init__`` for speed (see its docstring); if a cheroot release
sets a new attribute there, this test names it before a request fails on it.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from cheroot.makefile import StreamReader
from cheroot.server import HTTPConnection

from lwr.web.framing import LwrConnection
from lwr.web.send_deadline import BudgetedWriter

CACHED = {"resolve_peer_creds", "get_peer_creds"}  # cheroot's per-connection lru_cache wrappers


def _server(peercreds: bool) -> SimpleNamespace:
    return SimpleNamespace(peercreds_enabled=peercreds, peercreds_resolve_enabled=peercreds)


@pytest.fixture
def sock() -> socket.socket:
    ours, theirs = socket.socketpair()
    theirs.close()
    return ours


def _close(connection: HTTPConnection) -> None:
    connection.rfile.close()
    connection.wfile.close()


def test_the_attributes_are_cheroots_less_its_two_caches(sock: socket.socket) -> None:
    theirs = HTTPConnection(_server(False), sock)
    ours = LwrConnection(_server(False), sock)
    try:
        assert set(vars(ours)) == set(vars(theirs)) - CACHED
        assert isinstance(ours.rfile, StreamReader) and isinstance(ours.wfile, BudgetedWriter)
        assert (ours.server, ours.socket, ours.requests_seen) == (theirs.server, sock, 0)
        assert ours.peercreds_enabled is False
    finally:
        _close(theirs)
        _close(ours)
        sock.close()


def test_with_peer_credentials_cheroots_constructor_runs(sock: socket.socket) -> None:
    ours = LwrConnection(_server(True), sock)
    try:
        assert CACHED <= set(vars(ours)) and isinstance(ours.wfile, BudgetedWriter)
    finally:
        _close(ours)
        sock.close()
