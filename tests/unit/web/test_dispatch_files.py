"""The WSGI application in-process: uploads, paths and downloads of a job's files.

Split from test_dispatch.py; the Client is in dispatch_support.py, the fixtures in conftest.py.
Most tests run with both backends of :mod:`lwr.managers.safe_path`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from webob import Request, Response

from lwr.staging import digest
from tests.unit.web.dispatch_support import (
    BOTH_BACKENDS,
    TOKEN,
    Client,
    assert_error,
    leftovers,
)

# -- files ------------------------------------------------------------------------------------


def upload(
    client: Client, name: str, body: bytes, file_type: str = "input", method: str = "POST"
) -> Response:
    return client(method, "/jobs/1/files", {"type": file_type, "name": name}, body=body)


@BOTH_BACKENDS
def test_upload_then_path_then_download(client: Client) -> None:
    client.setup("1")
    job = client.app.config.staging_directory / "1"
    response = upload(client, "dataset_1.dat", b"abc\x00\xff")
    assert response.status_int == 200, response.text
    assert response.json == {"path": str(job / "inputs" / "dataset_1.dat"), "size": 5}
    assert (job / "inputs" / "dataset_1.dat").read_bytes() == b"abc\x00\xff"
    response = upload(
        client, "dataset_1_files/sub/extra.txt", b"nested", file_type="workdir", method="PUT"
    )
    assert (job / "working" / "dataset_1_files" / "sub" / "extra.txt").read_bytes() == b"nested"
    assert upload(client, "dataset_1.dat", b"second").status_int == 200
    assert (job / "inputs" / "dataset_1.dat").read_bytes() == b"second"
    assert upload(client, "empty", b"").json["size"] == 0

    response = client("GET", "/jobs/1/files/path", {"type": "tool", "name": "wrapper.py"})
    assert response.json == {"path": str(job / "tool_files" / "wrapper.py")}
    response = client("GET", "/jobs/1/files/path", {"type": "output", "name": "out.txt"})
    assert response.json == {"path": str(job / "outputs" / "out.txt")}

    (job / "outputs" / "out.txt").write_bytes(b"result " * 1000)
    response = client("GET", "/jobs/1/files", {"type": "output", "name": "out.txt"})
    assert response.status_int == 200
    assert response.body == b"result " * 1000
    assert response.content_length == 7000
    assert response.content_type == "application/octet-stream"
    response = client("GET", "/jobs/1/files", {"type": "output_jobdir", "name": "stdout"})
    assert_error(response, 404, "'stdout' does not exist")
    assert leftovers(job) == []


@BOTH_BACKENDS
def test_checksums_are_offered_only_when_asked(client: Client) -> None:
    client.setup("1")
    job = client.app.config.staging_directory / "1"
    want = {"Want-Repr-Digest": digest.WANT_SHA256}
    params = {"type": "input", "name": "in.dat"}
    plain = client("POST", "/jobs/1/files", params, body=b"payload")
    assert "sha256" not in plain.json
    asked = client("POST", "/jobs/1/files", params, body=b"payload", headers=want)
    assert asked.json["sha256"] == hashlib.sha256(b"payload").hexdigest()

    (job / "outputs" / "out.txt").write_bytes(b"result")
    params = {"type": "output", "name": "out.txt"}
    assert "Repr-Digest" not in client("GET", "/jobs/1/files", params).headers
    response = client("GET", "/jobs/1/files", params, headers=want)
    assert response.body == b"result"
    offered = digest.parse_sha256(response.headers["Repr-Digest"])
    assert offered == hashlib.sha256(b"result").digest()


@BOTH_BACKENDS
@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("../escape", 403),
        ("a/../../escape", 403),
        ("/etc/passwd", 403),
        ("C:\\x", 403),
        ("\\\\srv\\share", 403),
        ("..", 403),
        ("", 400),
        (".", 400),
    ],
)
def test_upload_traversal_is_refused(client: Client, name: str, status: int) -> None:
    client.setup("1")
    staging = client.app.config.staging_directory
    before = sorted(str(p) for p in staging.rglob("*"))
    assert_error(upload(client, name, b"evil"), status)
    assert sorted(str(p) for p in staging.rglob("*")) == before
    assert not (staging / "escape").exists()


@BOTH_BACKENDS
@pytest.mark.parametrize(
    ("route", "params", "status"),
    [
        ("/jobs/1/files/path", {"type": "input", "name": "../../x"}, 403),
        ("/jobs/1/files/path", {"type": "input", "name": "/etc/passwd"}, 403),
        ("/jobs/1/files/path", {"type": "bogus", "name": "x"}, 400),
        ("/jobs/1/files/path", {"name": "x"}, 400),
        ("/jobs/1/files", {"type": "output", "name": "../../../../etc/passwd"}, 403),
        ("/jobs/1/files", {"type": "output_workdir", "name": "/etc/passwd"}, 403),
        ("/jobs/1/files", {"type": "input", "name": "x"}, 400),
        ("/jobs/1/files", {"type": "output"}, 400),
    ],
)
def test_path_and_download_refuse_bad_names(
    client: Client, route: str, params: dict[str, str], status: int
) -> None:
    client.setup("1")
    assert_error(client("GET", route, params), status)


@BOTH_BACKENDS
def test_download_through_a_symlink_out_of_the_job_is_refused(client: Client) -> None:
    client.setup("1")
    working = client.app.config.staging_directory / "1" / "working"
    os.symlink("/etc/passwd", working / "passwd")
    response = client("GET", "/jobs/1/files", {"type": "output_workdir", "name": "passwd"})
    assert_error(response, 403)
    assert b"root:" not in response.body


@BOTH_BACKENDS
def test_download_of_missing_or_directory_outputs_is_404(client: Client) -> None:
    client.setup("1")
    assert_error(
        client("GET", "/jobs/1/files", {"type": "output", "name": "nope.txt"}),
        404,
        "does not exist",
    )
    assert_error(client("GET", "/jobs/1/files", {"type": "output", "name": "nope/deeper"}), 404)
    assert_error(
        client("GET", "/jobs/1/files", {"type": "output_jobdir", "name": "outputs"}),
        404,
        "directory",
    )


def test_file_routes_of_an_unknown_job_are_404(client: Client) -> None:
    assert_error(upload(client, "x", b"data"), 404, "unknown job")
    assert_error(client("GET", "/jobs/1/files/path", {"type": "input", "name": "x"}), 404)
    assert_error(client("GET", "/jobs/1/files", {"type": "output", "name": "x"}), 404)
    assert not (client.app.config.staging_directory / "1").exists()


@BOTH_BACKENDS
def test_upload_into_a_directory_name_is_refused(client: Client) -> None:
    client.setup("1")
    (client.app.config.staging_directory / "1" / "working" / "sub").mkdir()
    assert_error(upload(client, "sub", b"x", file_type="workdir"), 400, "directory")


def test_upload_to_a_finished_job_is_409(client: Client, wait_for: Callable[..., Any]) -> None:
    client.setup("1")
    client.submit("1", "true")
    client.final("1", wait_for)
    assert_error(upload(client, "late.dat", b"x"), 409, "finished")


@BOTH_BACKENDS
def test_upload_shorter_than_its_content_length_leaves_nothing(client: Client) -> None:
    client.setup("1")
    job = client.app.config.staging_directory / "1"
    request = Request.blank(
        f"/jobs/1/files?{urlencode({'type': 'input', 'name': 'x.dat', 'private_token': TOKEN})}",
        method="POST",
    )
    request.body = b"only ten b"
    request.environ["CONTENT_LENGTH"] = "100"
    response = request.get_response(client.wsgi)
    assert_error(response, 400, "90 bytes short")
    assert not (job / "inputs" / "x.dat").exists()
    assert leftovers(job) == []


def test_upload_with_a_bad_content_length_is_400(client: Client) -> None:
    client.setup("1")
    request = Request.blank(
        f"/jobs/1/files?{urlencode({'type': 'input', 'name': 'x', 'private_token': TOKEN})}",
        method="POST",
    )
    request.body = b"x"
    request.environ["CONTENT_LENGTH"] = "ten"
    assert_error(request.get_response(client.wsgi), 400, "Content-Length")


def test_upload_over_max_upload_size_is_413(client: Client) -> None:
    client.setup("1")
    job = client.app.config.staging_directory / "1"
    assert upload(client, "exact", b"x" * 1000).status_int == 200
    assert_error(upload(client, "big", b"x" * 1001), 413, "max_upload_size")
    assert not (job / "inputs" / "big").exists()
    assert leftovers(job) == []


def test_streamed_upload_without_length_over_the_limit_is_413(client: Client) -> None:
    client.setup("1")
    job = client.app.config.staging_directory / "1"
    request = Request.blank(
        f"/jobs/1/files?{urlencode({'type': 'input', 'name': 'stream', 'private_token': TOKEN})}",
        method="POST",
    )
    request.body = b"y" * 5000
    del request.environ["CONTENT_LENGTH"]
    assert_error(request.get_response(client.wsgi), 413)
    assert not (job / "inputs" / "stream").exists()
    assert leftovers(job) == []


@BOTH_BACKENDS
def test_streamed_upload_without_length_under_the_limit(client: Client) -> None:
    client.setup("1")
    request = Request.blank(
        f"/jobs/1/files?{urlencode({'type': 'input', 'name': 'stream', 'private_token': TOKEN})}",
        method="POST",
    )
    request.body = b"z" * 999
    del request.environ["CONTENT_LENGTH"]
    response = request.get_response(client.wsgi)
    assert response.status_int == 200
    assert response.json["size"] == 999
