"""Bad input against a real server: every refusal is a 4xx with a JSON ``error`` and no traceback.

Path-escape attempts are made on every route that takes a name (upload, path query, download) and
through the job id on every job route, both at the root and under ``/managers/NAME/``.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.server import LwrServer

pytestmark = pytest.mark.integration

TOKEN = "tok-123"
ESCAPES = [
    "../escape",
    "../../../../etc/passwd",
    "/etc/passwd",
    "a/../../b",
    "..",
    "C:\\x",
    "x\x00y",
]


@pytest.fixture
def server(lwr_server_factory: ServerFactory) -> LwrServer:
    return lwr_server_factory(app_options={"private_token": TOKEN})


def call(server: LwrServer, method: str, path: str, body: bytes | None = None, **params: str):
    params.setdefault("private_token", TOKEN)
    return server.request(method, path, params, body)


def assert_error(answer: tuple[int, object], *statuses: int) -> None:
    status, body = answer
    assert status in statuses, answer
    assert isinstance(body, dict) and isinstance(body.get("error"), str), answer
    assert "Traceback" not in body["error"]


def make_job(server: LwrServer, job_id: str = "j1") -> dict:
    status, config = call(server, "POST", "jobs", job_id=job_id)
    assert status == 200, config
    return config


def test_token_refused_on_every_protected_route(server: LwrServer) -> None:
    make_job(server)
    routes = [
        ("POST", "jobs", {"job_id": "x"}),
        ("POST", "jobs/j1/submit", {"command_line": "true"}),
        ("GET", "jobs/j1/status", {}),
        ("PUT", "jobs/j1/cancel", {}),
        ("DELETE", "jobs/j1", {}),
        ("POST", "jobs/j1/files", {"name": "a", "type": "input"}),
        ("GET", "jobs/j1/files/path", {"name": "a", "type": "input"}),
        ("GET", "jobs/j1/files", {"name": "a", "type": "output"}),
    ]
    for method, path, params in routes:
        for token in (None, "wrong", TOKEN + "x", ""):
            query = dict(params)
            if token is not None:
                query["private_token"] = token
            assert_error(
                server.request(method, path, query, b"" if method in ("POST", "PUT") else None), 403
            )
            assert_error(
                server.request(
                    method,
                    "managers/_default_/" + path,
                    query,
                    b"" if method in ("POST", "PUT") else None,
                ),
                403,
            )
    assert server.get("healthz")[0] == 200  # the only public route
    status, _ = server.request(
        "GET", "jobs/j1/status", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200
    assert TOKEN not in server.log()


def test_path_escapes_on_every_named_route(server: LwrServer, tmp_path: Path) -> None:
    make_job(server)
    secret = tmp_path / "outside.txt"
    secret.write_text("secret")
    for name in [*ESCAPES, str(secret)]:
        for prefix in ("", "managers/_default_/"):
            assert_error(
                call(server, "POST", prefix + "jobs/j1/files", b"evil", name=name, type="input"),
                400,
                403,
            )
            assert_error(
                call(server, "GET", prefix + "jobs/j1/files/path", name=name, type="input"),
                400,
                403,
            )
            assert_error(
                call(server, "GET", prefix + "jobs/j1/files", name=name, type="output"), 400, 403
            )
    assert not (tmp_path / "escape").exists()
    assert secret.read_text() == "secret"


def test_symlink_out_of_the_job_is_not_followed(server: LwrServer, tmp_path: Path) -> None:
    config = make_job(server)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    os.symlink(secret, os.path.join(config["working_directory"], "link"))
    os.symlink(tmp_path, os.path.join(config["working_directory"], "dirlink"))
    assert_error(call(server, "GET", "jobs/j1/files", name="link", type="output_workdir"), 403)
    assert_error(
        call(server, "POST", "jobs/j1/files", b"overwrite", name="link", type="workdir"), 403
    )
    assert_error(
        call(server, "POST", "jobs/j1/files", b"x", name="dirlink/new", type="workdir"), 403
    )
    assert secret.read_text() == "do not serve"
    assert not (tmp_path / "new").exists()


def test_bad_job_ids(server: LwrServer) -> None:
    for job_id in ("..", ".", "a b", "-x", "x" * 300):
        assert_error(call(server, "POST", "jobs", job_id=job_id), 400)
    assert_error(call(server, "GET", "jobs/../status"), 400, 404)
    assert_error(call(server, "GET", "jobs/%2E%2E/status"), 400, 404)
    assert_error(call(server, "POST", "jobs"), 400)  # job_id missing


def test_unknown_type_job_manager_and_route(server: LwrServer) -> None:
    make_job(server)
    for reserved in ("job.sh", "return_code", "stdout", "return_code.tmp"):
        assert_error(call(server, "POST", "jobs/j1/files", b"x", name=reserved, type="jobdir"), 403)
    assert (
        call(server, "POST", "jobs/j1/files", b"x", name="tool_script.sh", type="jobdir")[0] == 200
    )
    assert_error(call(server, "POST", "jobs/j1/files", b"x", name="a", type="bogus"), 400)
    assert_error(call(server, "GET", "jobs/j1/files", name="a", type="input"), 400)
    assert_error(call(server, "POST", "jobs/j1/files", b"x", type="input"), 400)  # name missing
    for method, path in (
        ("POST", "jobs/nope/submit"),
        ("PUT", "jobs/nope/cancel"),
        ("DELETE", "jobs/nope"),
        ("GET", "jobs/nope/files/path"),
    ):
        assert_error(
            call(
                server,
                method,
                path,
                b"" if method != "GET" else None,
                command_line="true",
                name="a",
                type="input",
            ),
            404,
        )
    assert_error(call(server, "POST", "managers/nope/jobs", b"", job_id="j2"), 404)
    assert_error(call(server, "GET", "no/such/route"), 404)
    assert_error(call(server, "DELETE", "healthz"), 405)


def test_status_of_unknown_job_is_lost_not_an_error(server: LwrServer) -> None:
    status, body = call(server, "GET", "jobs/never-set-up/status")
    assert status == 200
    assert body["status"] == "lost" and body["complete"] == "true"
    assert "unknown job" in body["stderr"]


def test_malformed_submit_parameters(server: LwrServer) -> None:
    make_job(server)
    assert_error(call(server, "POST", "jobs/j1/submit", b""), 400)  # command_line missing
    assert_error(
        call(server, "POST", "jobs/j1/submit", b"", command_line="true", env="[not json"), 400
    )
    assert_error(
        call(server, "POST", "jobs/j1/submit", b"", command_line="true", env='{"a": 1}'), 400
    )
    assert_error(
        call(
            server,
            "POST",
            "jobs/j1/submit",
            b"",
            command_line="true",
            env='[{"name": "A;rm -rf /", "value": "x"}]',
        ),
        400,
    )
    assert_error(
        call(
            server,
            "POST",
            "jobs/j1/submit",
            b"",
            command_line="true",
            dependencies_description='{"requirements": [{"name": "../x", "version": "1"}]}',
        ),
        400,
    )
    # nothing was queued by the refused submits: a good one still works
    status, body = call(server, "POST", "jobs/j1/submit", b"", command_line="true")
    assert status == 200 and body["status"] in ("queued", "running", "complete")


def test_upload_too_large(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory(app_options={"max_upload_size": "10"})
    status, config = server.request("POST", "jobs", {"job_id": "big"})
    assert status == 200
    assert_error(
        server.request("POST", "jobs/big/files", {"name": "a", "type": "input"}, b"x" * 11), 413
    )
    assert os.listdir(config["inputs_directory"]) == []


def test_an_upload_cut_off_mid_body_leaves_nothing(server: LwrServer) -> None:
    """A client that announces 8 MiB, sends 3 and disconnects: the body was moving by splice
    (kernel side) when the connection closed; no input, no temporary file, the server serves on."""
    config = make_job(server, "cut")
    path = f"/jobs/cut/files?name=in.dat&type=input&private_token={TOKEN}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {8 << 20}\r\n\r\n".encode()
        )
        sock.sendall(os.urandom(3 << 20))
    answered = re.compile(r"POST /jobs/cut/files\S* 400 ")
    deadline = time.monotonic() + 10
    while not answered.search(server.log()):  # the access log line of the cut request
        assert time.monotonic() < deadline, server.log()[-2000:]
        time.sleep(0.05)
    assert os.listdir(config["inputs_directory"]) == []
    status, answer = call(server, "POST", "jobs/cut/files", b"whole", name="in.dat", type="input")
    assert status == 200 and answer["size"] == 5, answer
    assert "Traceback" not in server.log()
