"""The client's HTTP transport against a real HTTP server running in a thread of this test."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lwr.client.transport import HttpTransport, TransportOptions
from lwr.errors import AuthorizationError, InvalidRequestError, LwrError, StagingError
from lwr.staging import digest
from lwr.staging.transfer import MIB, RetryPolicy

PAYLOAD = os.urandom(2 * MIB + 777)


class State:
    """What the fake server does next, and what it saw."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.connections: set[int] = set()
        self.bodies: list[int] = []
        self.wanted: list[str | None] = []

    def step(self) -> str:
        return self.steps.pop(0) if self.steps else "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, code: int, value: Any) -> None:
        body = json.dumps(value).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _common(self) -> str:
        self.state.requests.append((self.command, self.path))
        self.state.connections.add(id(self.connection))
        step = self.state.step()
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        self.body_sha256 = hashlib.sha256()
        while received < length:
            chunk = self.rfile.read(min(MIB, length - received))
            if not chunk:
                break
            received += len(chunk)
            self.body_sha256.update(chunk)
        self.state.bodies.append(received)
        self.state.wanted.append(self.headers.get("Want-Repr-Digest"))
        if step == "500":
            self._json(500, {"error": "busy"})
        elif step == "403":
            self._json(403, {"error": "wrong token"})
        elif step == "400":
            self._json(400, {"error": "bad name"})
        elif step == "close":
            self.close_connection = True
        return step

    def do_GET(self) -> None:
        step = self._common()
        if step in ("500", "403", "400", "close"):
            return
        if "files" in self.path:
            self.send_response(200)
            payload = PAYLOAD[:100] if step == "small" else PAYLOAD
            size = len(payload) + (100 if step == "short" else 0)
            self.send_header("Content-Length", str(size))
            if step in ("digest", "baddigest"):
                offered = hashlib.sha256(payload + (b"!" if step == "baddigest" else b"")).digest()
                self.send_header("Repr-Digest", digest.repr_digest(offered))
            self.end_headers()
            self.wfile.write(payload)
            if step == "short":
                self.close_connection = True
            return
        self._json(200, {"status": "running", "path": self.path})

    def do_POST(self) -> None:
        step = self._common()
        if step in ("500", "403", "400", "close"):
            return
        size = self.state.bodies[-1] - (1 if step == "wrongsize" else 0)
        answer: dict[str, Any] = {"path": "/remote/x", "size": size}
        if digest.wants_sha256(self.headers.get("Want-Repr-Digest")):
            if step == "badsha":
                self.body_sha256.update(b"!")
            answer["sha256"] = self.body_sha256.hexdigest()
        self._json(200, answer)

    def do_PUT(self) -> None:
        self.do_POST()


@pytest.fixture
def server() -> Iterator[tuple[str, State]]:
    state = State()
    handler = type("H", (Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/managers/m1/", state
    httpd.shutdown()
    httpd.server_close()


def transport(
    url: str, sleeps: list[float] | None = None, retries: int = 3, checksum: bool = False
) -> HttpTransport:
    policy = RetryPolicy(retries=retries, delay=0.5, max_delay=1.0, timeout=5, chunk_size=MIB)
    record = sleeps if sleeps is not None else []
    options = TransportOptions(retry=policy, progress=False, checksum=checksum)
    return HttpTransport(url, "s3cret", options, sleep=record.append)


def test_token_and_manager_prefix_in_query(server: tuple[str, State]) -> None:
    url, state = server
    answer = transport(url).call("GET", "jobs/1/status", {"job_id": "1", "skip": None})
    assert answer["status"] == "running"
    _method, path = state.requests[0]
    assert path.startswith("/managers/m1/jobs/1/status?")
    assert "private_token=s3cret" in path and "skip" not in path


def test_keep_alive_reuses_one_connection(server: tuple[str, State]) -> None:
    url, state = server
    client = transport(url)
    for _ in range(5):
        client.call("GET", "jobs/1/status")
    assert len(state.connections) == 1


def test_stale_connection_is_replaced_without_a_retry(server: tuple[str, State]) -> None:
    url, state = server
    client = transport(url)
    sleeps: list[float] = []
    client._sleep = sleeps.append
    client.call("GET", "jobs/1/status")
    state.steps = ["close"]  # the server drops the kept-alive connection without answering
    assert client.call("GET", "jobs/1/status")["status"] == "running"
    assert sleeps == []


def test_5xx_is_retried_with_backoff(server: tuple[str, State]) -> None:
    url, state = server
    sleeps: list[float] = []
    state.steps = ["500", "500"]
    assert transport(url, sleeps).call("GET", "jobs/1/status")["status"] == "running"
    assert sleeps == [0.5, 1.0]


def test_5xx_gives_up_naming_the_url_without_token(server: tuple[str, State]) -> None:
    url, state = server
    state.steps = ["500"] * 5
    with pytest.raises(LwrError) as info:
        transport(url, retries=2).call("GET", "jobs/1/status")
    assert "after 3 attempt(s)" in info.value.message
    assert "busy" in info.value.message
    assert "s3cret" not in info.value.message and "[redacted]" in info.value.message


def test_4xx_is_not_retried_and_typed(server: tuple[str, State]) -> None:
    url, state = server
    state.steps = ["403"]
    with pytest.raises(AuthorizationError, match="wrong token"):
        transport(url).call("GET", "jobs/1/status")
    state.steps = ["400"]
    with pytest.raises(InvalidRequestError, match="bad name"):
        transport(url).call("POST", "jobs", {"job_id": "x"})
    assert len(state.requests) == 2


def test_unsafe_call_is_not_repeated_after_a_5xx(server: tuple[str, State]) -> None:
    url, state = server
    state.steps = ["500"]
    with pytest.raises(LwrError):
        transport(url).call("POST", "jobs/1/submit", safe=False)
    assert len(state.requests) == 1


def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    sleeps: list[float] = []
    client = transport("http://127.0.0.1:1/", sleeps, retries=2)
    with pytest.raises(LwrError, match="cannot connect"):
        client.call("POST", "jobs/1/submit", safe=False)
    assert len(sleeps) == 2


def test_upload_streams_and_checks_size(server: tuple[str, State], tmp_path: Path) -> None:
    url, state = server
    source = tmp_path / "in.dat"
    source.write_bytes(PAYLOAD)
    sleeps: list[float] = []
    state.steps = ["wrongsize"]  # the server claims it stored one byte less: send again
    answer = transport(url, sleeps).upload("jobs/1/files", {"name": "in.dat"}, source)
    assert answer["path"] == "/remote/x"
    assert state.bodies == [len(PAYLOAD), len(PAYLOAD)]
    assert len(sleeps) == 1


def test_downloads_keep_the_connection_alive(
    server: tuple[str, State], tmp_path: Path, body_path: tuple[str, list[int]]
) -> None:
    url, state = server
    client = transport(url)
    state.steps = ["ok", "ok", "small", "ok", "ok", "ok"]  # a small body comes with the headers
    for index, expected in enumerate([PAYLOAD, PAYLOAD[:100], PAYLOAD]):
        target = tmp_path / f"out{index}.dat"
        assert client.download("jobs/1/files", {"name": "o"}, target) == len(expected)
        assert target.read_bytes() == expected
        assert client.call("GET", "jobs/1/status")["status"] == "running"
    assert len(state.connections) == 1
    mode, moved = body_path
    assert (sum(moved) > MIB) == (mode == "splice")  # a refusal moves nothing


def test_download_is_checked_and_atomic(
    server: tuple[str, State], tmp_path: Path, body_path: tuple[str, list[int]]
) -> None:
    url, state = server
    target = tmp_path / "sub" / "out.dat"
    sleeps: list[float] = []
    state.steps = ["short"]  # announces more than it sends, then closes
    size = transport(url, sleeps).download("jobs/1/files", {"name": "o"}, target)
    assert size == len(PAYLOAD)
    assert target.read_bytes() == PAYLOAD
    assert len(sleeps) == 1
    assert [p.name for p in target.parent.iterdir()] == ["out.dat"]  # no temporary left


def test_download_failure_is_a_staging_error(
    server: tuple[str, State], tmp_path: Path, body_path: tuple[str, list[int]]
) -> None:
    url, state = server
    state.steps = ["short"] * 5
    with pytest.raises(StagingError, match="bytes announced"):
        transport(url, retries=1).download("jobs/1/files", {}, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_checksums_are_asked_for_and_checked(
    server: tuple[str, State], tmp_path: Path, body_path: tuple[str, list[int]]
) -> None:
    """A wrong checksum is a transfer to retry; the right one lets the file land."""
    url, state = server
    sleeps: list[float] = []
    client = transport(url, sleeps, checksum=True)
    state.steps = ["baddigest", "digest"]
    target = tmp_path / "out.dat"
    assert client.download("jobs/1/files", {"name": "o"}, target) == len(PAYLOAD)
    assert target.read_bytes() == PAYLOAD
    assert len(sleeps) == 1
    source = tmp_path / "in.dat"
    source.write_bytes(PAYLOAD)
    state.steps = ["badsha", "ok"]
    assert client.upload("jobs/1/files", {"name": "in.dat"}, source)["sha256"]
    assert len(sleeps) == 2
    assert state.wanted == [digest.WANT_SHA256] * 4


def test_a_checksum_that_never_matches_fails_and_leaves_nothing(
    server: tuple[str, State], tmp_path: Path
) -> None:
    url, state = server
    state.steps = ["baddigest"] * 3
    with pytest.raises(StagingError, match="SHA-256"):
        transport(url, retries=2, checksum=True).download("jobs/1/files", {}, tmp_path / "o")
    assert list(tmp_path.iterdir()) == []


def test_without_checksum_nothing_is_asked_or_checked(
    server: tuple[str, State], tmp_path: Path
) -> None:
    url, state = server
    state.steps = ["baddigest"]  # offered anyway (a server may): not checked when not asked
    assert transport(url).download("jobs/1/files", {}, tmp_path / "o") == len(PAYLOAD)
    assert state.wanted == [None]
