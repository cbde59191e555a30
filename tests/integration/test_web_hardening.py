"""The web layer against hostile requests, on a real server over raw sockets.

Each test names the protection it proves in docs/security.md: the token never reaches the access
log however the query is split, client strings cannot forge log lines, ambiguous body framing is
refused and the connection closed, ``raw`` takes only booleans, and inputs that used to end in a
500 (over-long names, deeply nested JSON, a broken chunked body, a stalled body) answer a 4xx.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import quote

import pytest

from lwr.web.front import MAX_HEADER_BYTES
from tests.integration.conftest import ServerFactory
from tests.integration.server import LwrServer

pytestmark = pytest.mark.integration

TOKEN = "Semi-Colon-Secret-7731"


@pytest.fixture
def server(lwr_server_factory: ServerFactory) -> LwrServer:
    return lwr_server_factory(app_options={"private_token": TOKEN})


def exchange(server: LwrServer, data: bytes, timeout: float = 15) -> bytes:
    """Send ``data`` on a fresh connection; everything the server says until it closes."""
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        while chunk := sock.recv(65536):
            received += chunk
    return received


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the first response in ``answer``."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:])
    )
    length = int(headers.get("content-length", len(rest)))
    return int(lines[0].split()[1]), headers, rest[:length]


def assert_json_error(answer: bytes, status: int) -> dict[str, str]:
    code, headers, body = parse(answer)
    assert code == status, answer
    assert "json" in headers.get("content-type", ""), answer
    error = json.loads(body)
    assert isinstance(error.get("error"), str) and "Traceback" not in error["error"], answer
    return headers


def request_line(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    head = "".join(f"{h}\r\n" for h in ("Host: 127.0.0.1", *headers))
    return f"{method} {target} HTTP/1.1\r\n{head}\r\n".encode() + body


def setup_job(server: LwrServer, job_id: str) -> None:
    status, answer = server.request("POST", "jobs", {"job_id": job_id, "private_token": TOKEN})
    assert status == 200, answer


# 6. the token and the access log


@pytest.mark.parametrize(
    "query",
    [
        f"private_token={TOKEN};job_id=j1",
        f"job_id=j1;private_token={TOKEN}",
        f"job_id=j1%3Bprivate_token%3D{TOKEN}",
        f"name=a;type=input&private_token={TOKEN};tool_id=t",
        f"private%5Ftoken={TOKEN};job_id=j1",
    ],
)
def test_a_semicolon_query_keeps_the_token_out_of_the_access_log(
    server: LwrServer, query: str
) -> None:
    setup_job(server, "j1")
    answer = exchange(server, request_line("GET", f"/jobs/j1/status?{query}", "Connection: close"))
    assert parse(answer)[0] in (200, 403), answer  # webob splits on ';' too: often accepted
    deadline = time.monotonic() + 10
    while "/jobs/j1/status?" not in server.log():  # the access line of that request
        assert time.monotonic() < deadline, server.log()[-2000:]
        time.sleep(0.05)
    assert TOKEN not in server.log()


# 7. log lines a client cannot forge


def test_control_characters_from_a_request_cannot_forge_log_lines(server: LwrServer) -> None:
    setup_job(server, "j1")
    forged = "\r\nFORGED 127.0.0.1 GET /admin 200"
    target = (
        f"/jobs/j1{quote(forged)}/status?private_token={TOKEN}"
        f"&job_id={quote(forged)}&name={quote(chr(27) + '[2J' + forged)}"
    )
    exchange(
        server,
        request_line("GET", target, "X-Forwarded-For: 10.0.0.1\x1b[2K\x85", "Connection: close"),
    )
    upload = f"/jobs/j1/files?private_token={TOKEN}&type=input&name={quote('in' + forged)}"
    exchange(server, request_line("POST", upload, "Content-Length: 2", "Connection: close") + b"ok")
    bad_job = f"/jobs/x{quote(forged)}/status?private_token={TOKEN}"
    exchange(server, request_line("GET", bad_job, "Connection: close"))
    deadline = time.monotonic() + 10
    while server.log().count("FORGED") < 3:
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.05)
    log = server.log()
    assert not [line for line in log.splitlines() if line.startswith("FORGED")], log[-3000:]
    assert "\r" not in log and "\x1b" not in log and "\x85" not in log, log[-3000:]
    assert "\\r\\nFORGED" in log and "\\x1b[2K" in log  # escaped, still readable


# 8. request framing


@pytest.mark.parametrize(
    "headers",
    [
        ("Content-Length: 2", "Content-Length: 40"),
        ("Content-Length: 40", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 0"),
    ],
)
def test_ambiguous_body_framing_is_refused_and_the_connection_closed(
    server: LwrServer, headers: tuple[str, str]
) -> None:
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    target = f"/jobs?job_id=smuggle&private_token={TOKEN}"
    answer = exchange(server, request_line("POST", target, *headers, body=b"0\r\n\r\n" + smuggled))
    response_headers = assert_json_error(answer, 400)
    assert response_headers.get("connection") == "close"
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # the smuggled request was never answered
    status = server.request("GET", "jobs/smuggle/status", {"private_token": TOKEN})[1]
    assert status["status"] == "lost", status  # the refused request reached no controller


def test_equal_repeated_content_length_is_still_served(server: LwrServer) -> None:
    setup_job(server, "j1")
    target = f"/jobs/j1/files?private_token={TOKEN}&type=input&name=a.txt"
    answer = exchange(
        server,
        request_line(
            "POST",
            target,
            "Content-Length: 2",
            "Content-Length: 2",
            "Connection: close",
            body=b"ok",
        ),
    )
    assert parse(answer)[0] == 200, answer


# 9. env raw


def submit(server: LwrServer, job_id: str, env: list[dict[str, object]]) -> tuple[int, object]:
    params = {"private_token": TOKEN, "command_line": "true", "env": json.dumps(env)}
    return server.request("POST", f"jobs/{job_id}/submit", params, b"")


@pytest.mark.parametrize("raw", ["false", "true", 0, 1, "", [], {}])
def test_env_raw_must_be_a_json_boolean(server: LwrServer, raw: object) -> None:
    setup_job(server, "e1")
    status, answer = submit(server, "e1", [{"name": "MY_VAR", "value": "$HOME", "raw": raw}])
    assert status == 400, answer
    assert isinstance(answer, dict) and "MY_VAR" in answer["error"] and "raw" in answer["error"]


def test_env_raw_booleans_and_absence_are_accepted(server: LwrServer) -> None:
    setup_job(server, "e2")
    env = [
        {"name": "A", "value": "x", "raw": True},
        {"name": "B", "value": "y", "raw": False},
        {"name": "C", "value": "z", "raw": None},
        {"name": "D", "value": "w"},
    ]
    status, answer = submit(server, "e2", env)
    assert status == 200, answer


# 5. 4xx, not 500


def test_over_long_names_answer_400(server: LwrServer) -> None:
    setup_job(server, "j1")
    for name in ("n" * 300, "/".join(["d" * 250] * 20)):
        status, answer = server.request(
            "POST", "jobs/j1/files", {"private_token": TOKEN, "type": "input", "name": name}, b"x"
        )
        assert status == 400 and "longer than" in answer["error"], answer
        status, answer = server.request(
            "GET", "jobs/j1/files/path", {"private_token": TOKEN, "type": "input", "name": name}
        )
        assert status in (200, 400), answer
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("depth", [100, 990, 5000, 100_000])
def test_deeply_nested_json_answers_400(server: LwrServer, depth: int) -> None:
    """Objects nested ``depth`` deep, in every submit parameter of that type (a list for env)."""
    setup_job(server, "deep")
    nested = '{"a":' * depth + "1" + "}" * depth
    for name, value in (("params", nested), ("remote_staging", nested), ("env", f"[{nested}]")):
        params = {"private_token": TOKEN, "command_line": "true", name: value}
        status, answer = server.request("POST", "jobs/deep/submit", params, b"")
        if len(value) > MAX_HEADER_BYTES:  # refused whole by the header gate (lwr.web.front)
            assert status == 431 and "exceed" in answer["error"], answer
            continue
        assert status == 400, answer
        assert name in answer["error"], answer
    assert "Traceback" not in server.log()


def test_a_malformed_chunk_size_answers_400_and_closes(server: LwrServer) -> None:
    setup_job(server, "j1")
    target = f"/jobs/j1/files?private_token={TOKEN}&type=input&name=c.txt"
    body = b"zz\r\nabc\r\n0\r\n\r\n" + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = exchange(server, request_line("POST", target, "Transfer-Encoding: chunked", body=body))
    headers = assert_json_error(answer, 400)
    assert headers.get("connection") == "close" and answer.count(b"HTTP/1.1 ") == 1, answer
    assert "Traceback" not in server.log()


def test_a_body_that_stops_arriving_ends_without_a_500(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory(app_options={"private_token": TOKEN}, start=False)
    ini = server.directory / "server.ini"
    ini.write_text(ini.read_text().replace("timeout = 60\n", "timeout = 2\n"))
    server.start()
    setup_job(server, "j1")
    target = f"/jobs/j1/files?private_token={TOKEN}&type=input&name=s.txt"
    started = time.monotonic()
    answer = exchange(server, request_line("POST", target, "Content-Length: 100", body=b"x" * 10))
    assert time.monotonic() - started < 12, "the stalled request was not ended after its deadline"
    if answer:  # answered before closing: a 4xx JSON error
        assert_json_error(answer, 408)
    assert " 500 " not in server.log() and "Traceback" not in server.log(), server.log()[-2000:]
