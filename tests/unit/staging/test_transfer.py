"""HTTP fetch and push against a real local HTTP server running in a thread of this test."""

from __future__ import annotations

import email.parser
import email.policy
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lwr.errors import StagingError
from lwr.staging.transfer import MIB, RetryPolicy, fetch, push, redact_url

PAYLOAD = os.urandom(3 * MIB + 12345)


@dataclass
class Script:
    """What the server does for one path: a queue of behaviours, the last one repeating."""

    steps: list[str]
    served: int = 0


@dataclass
class Server:
    url: str
    scripts: dict[str, Script] = field(default_factory=dict)
    received: list[tuple[str, str, bytes, str]] = field(default_factory=list)

    def script(self, path: str, *steps: str) -> str:
        self.scripts[path] = Script(list(steps))
        return self.url + path

    def hits(self, path: str) -> int:
        return self.scripts[path].served


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: Server

    def log_message(self, *args: Any) -> None:
        pass

    def _step(self) -> str:
        script = self.state.scripts.get(self.path.split("?")[0])
        if script is None:
            return "404"
        script.served += 1
        return script.steps.pop(0) if len(script.steps) > 1 else script.steps[0]

    def _status(self, code: int) -> None:
        body = f"status {code}".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        step = self._step()
        if step.isdigit():
            return self._status(int(step))
        self.send_response(200)
        announced = len(PAYLOAD) + (100 if step == "long" else 0)
        if step != "chunkless":
            self.send_header("Content-Length", str(announced))
        else:
            self.close_connection = True
        self.end_headers()
        if step == "drop":
            self.wfile.write(PAYLOAD[: MIB // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            self.close_connection = True
            return
        self.wfile.write(PAYLOAD)
        if step == "long":
            self.close_connection = True

    def _receive(self) -> None:
        step = self._step()
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        if step.isdigit():
            return self._status(int(step))
        self.state.received.append((self.command, self.path, body, self.headers["Content-Type"]))
        self._status(200)

    do_POST = _receive
    do_PUT = _receive


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    Handler.state = state
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


FAST = RetryPolicy(retries=2, delay=0.01, max_delay=0.05, timeout=5)


def no_sleep(log: list[float]) -> Callable[[float], None]:
    return log.append


def test_fetch_streams_the_file_into_place(server: Server, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dataset.dat"
    assert fetch(server.script("/f", "ok"), target, FAST) == len(PAYLOAD)
    assert target.read_bytes() == PAYLOAD
    assert os.listdir(target.parent) == ["dataset.dat"]  # no temporary file left behind


def test_fetch_without_content_length_reads_to_the_end(server: Server, tmp_path: Path) -> None:
    target = tmp_path / "d"
    assert fetch(server.script("/f", "chunkless"), target, FAST) == len(PAYLOAD)
    assert target.read_bytes() == PAYLOAD


def test_fetch_retries_a_500_then_succeeds(server: Server, tmp_path: Path) -> None:
    waits: list[float] = []
    url = server.script("/f", "500", "503", "ok")
    fetch(url, tmp_path / "d", FAST, sleep=no_sleep(waits))
    assert (tmp_path / "d").read_bytes() == PAYLOAD
    assert server.hits("/f") == 3
    assert waits == [0.01, 0.02]


def test_fetch_gives_up_on_a_dropped_connection(server: Server, tmp_path: Path) -> None:
    target = tmp_path / "d"
    url = server.script("/f", "500", "drop")
    with pytest.raises(StagingError) as caught:
        fetch(url + "?path=/g/x&job_key=SECRET", target, FAST, sleep=no_sleep([]))
    message = caught.value.message
    assert "after 3 attempt(s)" in message and str(target) in message
    assert "/f?path=%2Fg%2Fx" in message or "/f?path=/g/x" in message
    assert "SECRET" not in message and "job_key=[redacted]" in message
    assert not target.exists() and os.listdir(tmp_path) == []


def test_fetch_detects_a_body_shorter_than_announced(server: Server, tmp_path: Path) -> None:
    with pytest.raises(StagingError, match=f"received {len(PAYLOAD)} of the {len(PAYLOAD) + 100}"):
        fetch(server.script("/f", "long"), tmp_path / "d", FAST, sleep=no_sleep([]))
    assert server.hits("/f") == 3
    assert os.listdir(tmp_path) == []


def test_fetch_does_not_retry_a_404(server: Server, tmp_path: Path) -> None:
    with pytest.raises(StagingError, match="HTTP 404"):
        fetch(server.script("/f", "404"), tmp_path / "d", FAST, sleep=no_sleep([]))
    assert server.hits("/f") == 1


def test_fetch_reports_a_refused_connection(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StagingError, match=r"ConnectionRefusedError|Connection refused"):
        fetch(f"http://127.0.0.1:{port}/x", tmp_path / "d", FAST, sleep=no_sleep([]))


def test_push_posts_multipart_field_file(server: Server, tmp_path: Path) -> None:
    source = tmp_path / 'out "1".dat'
    source.write_bytes(PAYLOAD)
    assert push(server.script("/up", "ok") + "?path=/g/o", source, FAST) == len(PAYLOAD)
    method, path, body, content_type = server.received[0]
    assert (method, path) == ("POST", "/up?path=/g/o")
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    (part,) = list(message.iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_payload(decode=True) == PAYLOAD


def test_push_puts_the_raw_body_and_retries(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "o"
    source.write_bytes(b"abc" * 1000)
    push(server.script("/up", "502", "ok"), source, FAST, method="PUT", sleep=no_sleep([]))
    assert server.hits("/up") == 2
    assert server.received[0][0] == "PUT" and server.received[0][2] == b"abc" * 1000


def test_push_names_the_file_and_the_cause(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "o"
    source.write_bytes(b"x")
    with pytest.raises(StagingError) as caught:
        push(server.script("/up", "403"), source, FAST, sleep=no_sleep([]))
    assert str(source) in caught.value.message and "HTTP 403" in caught.value.message
    with pytest.raises(StagingError, match="does not exist"):
        push(server.url + "/up", tmp_path / "missing", FAST)


def test_backoff_doubles_up_to_the_maximum() -> None:
    assert list(RetryPolicy(retries=5, delay=1, max_delay=5).delays()) == [1, 2, 4, 5, 5]
    assert list(RetryPolicy(retries=0).delays()) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/p?path=/a&job_key=abc", "http://h/p?path=/a&job_key=[redacted]"),
        ("http://u:pw@h/p?private_token=t", "http://h/p?private_token=[redacted]"),
        ("http://h/p", "http://h/p"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
