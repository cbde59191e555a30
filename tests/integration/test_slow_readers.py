"""Slow download readers against a real server: dropped at their send deadline, nobody starved.

Twice as many clients as the server has worker threads request a large download and then read it
a few KiB at a time, far below ``send_min_rate``. The server's ``timeout`` is set beyond the test
(300 s), so only the response deadline (``send_timeout`` + bytes / ``send_min_rate``, not renewed
by each byte) can free the threads: without it ``/healthz`` and the job below would wait for
ever. Both ways a download leaves LWR are covered: ``os.sendfile`` (plain HTTP) and the write
stream (HTTPS).
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from tests.integration.conftest import ServerFactory, run_check
from tests.integration.server import LwrServer

pytestmark = pytest.mark.integration

TOKEN = "tok-readers"
THREADS = 4
READERS = 2 * THREADS
SIZE = 64 << 20  # far more than the kernel buffers between server and reader hold


class SlowReader:
    """Requests a download, then reads 4 KiB every 0.25 s until the server closes."""

    def __init__(self, server: LwrServer, path: str) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)  # before connect
        sock.settimeout(120)
        sock.connect(("127.0.0.1", server.port))
        if server.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        self.sock = sock
        self.received = 0
        self.head = b""
        self.closed = threading.Event()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self.closed.wait(0.25):
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                if len(self.head) < 64:
                    self.head += chunk[:64]
                self.received += len(chunk)
        except OSError:
            pass  # reset by the server: dropped too
        self.closed.set()

    def close(self) -> None:
        self.closed.set()
        self._thread.join()
        self.sock.close()


def start(factory: ServerFactory, scheme: str) -> LwrServer:
    server_options = {
        "threads": str(THREADS),
        "timeout": "300",
        "send_timeout": "2",
        "send_min_rate": str(8 << 20),
    }
    if scheme == "https":
        server_options["ssl_pem"] = "*"
    return factory(
        app_options={"private_token": TOKEN}, server_options=server_options, scheme=scheme
    )


def big_output(server: LwrServer, job_id: str) -> str:
    """A job with a large output file; the download path to request it."""
    status, job = server.request("POST", "jobs", {"job_id": job_id, "private_token": TOKEN})
    assert status == 200, job
    with open(Path(job["outputs_directory"]) / "big.dat", "wb") as handle:
        handle.truncate(SIZE)  # sparse: costs no disk, sends as zeros
    return f"/jobs/{job_id}/files?name=big.dat&type=output&private_token={TOKEN}"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_slow_download_readers_are_dropped_and_starve_nobody(
    lwr_server_factory: ServerFactory, scheme: str
) -> None:
    server = start(lwr_server_factory, scheme)
    path = big_output(server, "readers")
    readers = [SlowReader(server, path) for _ in range(READERS)]
    try:
        # every thread is taken by a reader now; only their deadline can give one back
        status, answer = server.request("GET", "healthz")
        assert status == 200, answer
        if scheme == "http":
            run_check(server.url, private_token=TOKEN)  # a whole Galaxy job round trip
        else:
            status, data = server.request("GET", path)
            assert status == 200 and len(data) == SIZE  # a normal reader gets the whole file
        for reader in readers:
            assert reader.closed.wait(60), "a slow reader was never dropped"
            assert reader.head.startswith(b"HTTP/1.1 200"), reader.head
            assert reader.received < SIZE, "a reader got the whole file"
    finally:
        for reader in readers:
            reader.close()
    log = server.log()
    assert log.count("dropped a slow reader: GET /jobs/readers/files to ") == READERS, log
    assert TOKEN not in log.split("dropped a slow reader", 1)[1]
    assert "Traceback" not in log
    assert server.request("GET", "healthz")[0] == 200
