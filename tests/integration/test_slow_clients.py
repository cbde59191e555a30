"""Slow and idle clients against a real server: they cost no worker thread and are cut off.

200 connections trickle their request headers a line a second while ``/healthz`` and an upload
are served as usual; the server closes the trickling connections at ``header_timeout``, an idle
kept-alive connection at ``timeout``, and a trickled body at its ``body_timeout`` budget. The
latency bounds are far above normal (a healthy answer takes milliseconds): they catch starvation
(which waits for the attackers, i.e. seconds to minutes), not a slow machine.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ServerFactory, run_check
from tests.integration.server import LwrServer

pytestmark = pytest.mark.integration

TOKEN = "tok-slow"
SLOW_CLIENTS = 200
HEADER_TIMEOUT = 8.0
#: Far above a normal answer (milliseconds), far below what starvation costs (the attack's length).
LATENCY_BOUND = 2.0


@pytest.fixture(autouse=True)
def enough_descriptors() -> Iterator[None]:
    """200 client sockets here and 200 in the server (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def start(factory: ServerFactory, scheme: str = "http", **server_options: str) -> LwrServer:
    """A server from the sample with ``server_options`` set in ``[server:main]``."""
    server = factory(app_options={"private_token": TOKEN}, start=False, scheme=scheme)
    ini = server.directory / "server.ini"
    text = ini.read_text()
    if "timeout" in server_options:
        text = text.replace("timeout = 60\n", f"timeout = {server_options.pop('timeout')}\n")
    extra = "".join(f"{key} = {value}\n" for key, value in server_options.items())
    ini.write_text(text.replace("[app:main]\n", extra + "\n[app:main]\n", 1))
    return server.start()


class Trickler:
    """Slow clients: each sends a request line, then one header line a second, never the end."""

    def __init__(self, port: int, count: int) -> None:
        address = ("127.0.0.1", port)
        self.socks = [socket.create_connection(address, timeout=10) for _ in range(count)]
        self.sent_lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        for sock in self.socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for sock in self.socks:
                try:
                    sock.send(b"X-Slow: 1\r\n")
                except OSError:
                    pass  # closed by the server: what we wait for
            self.sent_lines += 1

    def wait_all_closed(self, timeout: float) -> list[bytes]:
        """Each connection's bytes until the server closed it; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        answers = []
        for sock in self.socks:
            received = b""
            while True:
                left = deadline - time.monotonic()
                assert left > 0, f"a slow connection still open after {timeout}s"
                sock.settimeout(left)
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                received += chunk
            answers.append(received)
        return answers

    def wait_open(self) -> bool:
        """Whether every connection is still open, unanswered (the attack still holds)."""
        for sock in self.socks:
            sock.settimeout(0)
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    return False
                return False  # an answer arrived: the server treated it as a complete request
            except BlockingIOError:
                continue
            except OSError:
                return False
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


def timed(server: LwrServer, method: str, path: str, body: bytes | None = None, **params: str):
    began = time.monotonic()
    status, answer = server.request(method, path, params, body)
    return status, answer, time.monotonic() - began


def test_slow_header_clients_starve_nobody(lwr_server_factory: ServerFactory) -> None:
    server = start(lwr_server_factory, header_timeout=str(HEADER_TIMEOUT))
    status, job, _ = timed(server, "POST", "jobs", job_id="slow1", private_token=TOKEN)
    assert status == 200, job
    began = time.monotonic()
    slow = Trickler(server.port, SLOW_CLIENTS)  # 200 > the 16 worker threads of the sample
    try:
        while slow.sent_lines < 3:  # the attack is under way: every connection mid-headers
            time.sleep(0.1)
        for i in range(10):
            status, answer, took = timed(server, "GET", "healthz")
            assert status == 200 and took < LATENCY_BOUND, (status, took)
            body = os.urandom(64 * 1024)
            status, answer, took = timed(
                server, "POST", "jobs/slow1/files", body,
                name=f"in{i}.dat", type="input", private_token=TOKEN,
            )  # fmt: skip
            assert status == 200 and answer["size"] == len(body), answer
            assert took < LATENCY_BOUND, took
        assert time.monotonic() - began < HEADER_TIMEOUT, "the checks ran after the deadline"
        answers = slow.wait_all_closed(HEADER_TIMEOUT + 10)
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), {a[:40] for a in answers}
        assert slow.sent_lines >= HEADER_TIMEOUT - 2  # closed by the deadline, kept trickling
        assert (Path(job["inputs_directory"]) / "in9.dat").read_bytes() == body
    finally:
        slow.close()
    assert timed(server, "GET", "healthz")[0] == 200
    assert "Traceback" not in server.log()


@pytest.mark.timeout(150)
def test_a_galaxy_job_runs_through_while_200_clients_trickle(
    lwr_server_factory: ServerFactory,
) -> None:
    """pulsar.client's whole job scenario (setup, uploads, submit, status, downloads, clean)
    while the attack lasts longer than the job; a starved server would never finish it."""
    server = start(lwr_server_factory, header_timeout="300")
    slow = Trickler(server.port, SLOW_CLIENTS)
    try:
        while slow.sent_lines < 2:
            time.sleep(0.1)
        began = time.monotonic()
        run_check(server.url, private_token=TOKEN)
        took = time.monotonic() - began
        assert slow.wait_open(), "the slow clients were cut off before the job finished"
    finally:
        slow.close()
    assert took < 120, took  # a few seconds normally; starvation never finishes
    assert "Traceback" not in server.log()


def test_idle_keep_alive_connection_is_closed(lwr_server_factory: ServerFactory) -> None:
    server = start(lwr_server_factory, timeout="2")
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head, head
        began = time.monotonic()
        while sock.recv(4096):
            pass
        assert time.monotonic() - began < 10  # closed by the server at its 2 s idle timeout


def test_trickled_body_gets_408_within_its_budget(lwr_server_factory: ServerFactory) -> None:
    """A body at 2 bytes/s with a 3 s + 1 s per KiB budget: refused, and no thread held long."""
    server = start(lwr_server_factory, body_timeout="3", body_min_rate="1024")
    status, job, _ = timed(server, "POST", "jobs", job_id="slowbody", private_token=TOKEN)
    assert status == 200, job
    path = f"/jobs/slowbody/files?name=in.dat&type=input&private_token={TOKEN}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode())
        began = time.monotonic()
        answer = b""
        sock.settimeout(0.5)
        while time.monotonic() - began < 20:
            try:
                sock.send(b"x")
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        took = time.monotonic() - began
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"error"' in answer and took < 12, (answer, took)
    assert not (Path(job["inputs_directory"]) / "in.dat").exists()
    assert timed(server, "GET", "healthz")[0] == 200
    assert "Traceback" not in server.log()


def test_silent_tls_clients_do_not_stall_accepting(lwr_server_factory: ServerFactory) -> None:
    """TCP connections to the HTTPS port that never start the handshake: others are served,
    and the silent ones are closed at the header deadline."""
    server = start(lwr_server_factory, scheme="https", ssl_pem="*", header_timeout="4")
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=20) for _ in range(50)]
    try:
        for _ in range(5):
            status, _answer, took = timed(server, "GET", "healthz")
            assert status == 200 and took < LATENCY_BOUND, (status, took)
        began = time.monotonic()
        for sock in silent:
            assert sock.recv(4096) == b""  # closed by the server, nothing said
        assert time.monotonic() - began < 15
    finally:
        for sock in silent:
            sock.close()
    assert "Traceback" not in server.log()


def test_pipelined_requests_and_oversized_headers(lwr_server_factory: ServerFactory) -> None:
    """Two requests in one packet are both answered (the gate hands buffered bytes back to
    cheroot); headers past 64 KiB get 431 and a closed connection."""
    server = start(lwr_server_factory, header_timeout="3")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(request + request + b"GET /healthz HTTP/1.1\r\nHost:")  # 2.5 requests
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        # the unfinished third request is closed at header_timeout with 408
        assert received.count(b"HTTP/1.1 200") == 2, received
        assert b"HTTP/1.1 408" in received and received.rstrip().endswith(b'(header_timeout)"}')
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-Big: " + b"a" * (65 * 1024) + b"\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        assert received.startswith(b"HTTP/1.1 431"), received[:100]
        assert json.loads(received.split(b"\r\n\r\n", 1)[1])["error"], received
    assert timed(server, "GET", "healthz")[0] == 200


def test_refused_upload_is_answered_not_reset(lwr_server_factory: ServerFactory) -> None:
    """A large body the server refuses unread (no token) is read and dropped within its budget,
    so the client gets its 403 rather than a reset connection."""
    server = start(lwr_server_factory)
    for _ in range(3):
        status, answer = server.request(
            "POST", "jobs/none/files", {"name": "a", "type": "input"}, os.urandom(16 << 20)
        )
        assert status == 403 and "error" in answer, (status, answer)
