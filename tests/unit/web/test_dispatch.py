"""The WSGI application in-process: every route, its errors, auth, uploads and downloads.

Requests are built with ``webob.Request.blank`` and answered by the real application over a real
job store and real local managers in ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from webob import Request, Response

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.errors import StagingError
from lwr.managers import process, safe_path
from lwr.managers.base import JobState
from lwr.pulsar_version import PULSAR_PROTOCOL_VERSION
from lwr.staging import digest
from lwr.web import routes
from lwr.web.dispatch import LwrWsgiApp, redact

TOKEN = "s3cret-token"
MANAGERS_INI = """
[manager:_default_]
type = queued_python
max_concurrent_jobs = 1
min_polling_interval = 0.05

[manager:second]
type = unqueued
min_polling_interval = 0.05
"""


class Client:
    """Builds requests for one in-process application."""

    def __init__(self, app: LwrWsgiApp) -> None:
        self.wsgi = app
        self.app = app.app

    def __call__(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        token: str | None = TOKEN,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        query: str | None = None,
    ) -> Response:
        items = dict(params or {})
        if token is not None:
            items["private_token"] = token
        qs = query if query is not None else urlencode(items)
        request = Request.blank(
            f"{path}?{qs}" if qs else path, method=method, headers=headers or {}
        )
        if body is not None:
            request.body = body
        return request.get_response(self.wsgi)

    def setup(self, job_id: str = "1", manager: str = "") -> dict[str, Any]:
        response = self(
            "POST", f"{manager}/jobs", {"job_id": job_id, "tool_id": "cat1", "tool_version": "1.0"}
        )
        assert response.status_int == 200, response.text
        return response.json  # type: ignore[no-any-return]

    def submit(self, job_id: str, command: str, manager: str = "", **extra: Any) -> Response:
        params = {"command_line": command, **{k: json.dumps(v) for k, v in extra.items()}}
        return self("POST", f"{manager}/jobs/{job_id}/submit", params)

    def status(self, job_id: str, manager: str = "") -> dict[str, Any]:
        response = self("GET", f"{manager}/jobs/{job_id}/status")
        assert response.status_int == 200, response.text
        return response.json  # type: ignore[no-any-return]

    def final(self, job_id: str, wait_for: Callable[..., Any], manager: str = "") -> dict[str, Any]:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (s := self.status(job_id, manager))["complete"] == "true" and s,
            timeout=15,
            what=f"job {job_id} to finish",
        )


AppFactory = Callable[..., Client]


@pytest.fixture(params=["descriptors", "paths"])
def safe_path_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a file-route test with each backend of :mod:`lwr.managers.safe_path`.

    ``paths`` is the fallback Windows' Python (no ``dir_fd``) uses; it is forced here on Linux.
    """
    monkeypatch.setattr(safe_path, "BACKEND", request.param)
    return str(request.param)


BOTH_BACKENDS = pytest.mark.usefixtures("safe_path_backend")


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[AppFactory]:
    apps: list[LwrApp] = []

    def factory(**options: str) -> Client:
        here = tmp_path / f"server{len(apps)}"
        here.mkdir()
        (here / "job_managers.ini").write_text(MANAGERS_INI)
        config = load_app_config({"private_token": TOKEN, **options}, here=here)
        app = LwrApp(config)
        app.start()
        apps.append(app)
        return Client(LwrWsgiApp(app))

    yield factory
    for app in apps:
        for manager in app.managers.values():
            for record in app.store.in_states(manager.name, (JobState.QUEUED, JobState.RUNNING)):
                if record.external_id:
                    process.kill_group(record.external_id, grace=0.5)
        app.stop()


@pytest.fixture
def client(make_client: AppFactory) -> Client:
    return make_client(max_upload_size="1000")


def assert_error(response: Response, status: int, *fragments: str) -> dict[str, Any]:
    """A JSON error answer with ``status``, mentioning ``fragments`` and no Python internals."""
    assert response.status_int == status, response.text
    assert response.content_type == "application/json"
    body = response.json
    assert set(body) == {"error"}
    for fragment in fragments:
        assert fragment in body["error"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body  # type: ignore[no-any-return]


def leftovers(directory: Path) -> list[str]:
    return [str(p) for p in directory.rglob(".upload-*")]


# -- health, routing, errors ------------------------------------------------------------------


def test_healthz_is_public(client: Client) -> None:
    response = client("GET", "/healthz", token=None)
    assert response.status_int == 200
    assert response.json == {
        "status": "ok",
        "version": client.app.version,
        "managers": ["_default_", "second"],
    }


def test_unknown_route_is_a_json_404(client: Client) -> None:
    assert_error(client("GET", "/nothing/here"), 404, "no such route")
    assert_error(client("GET", "/nothing/here", token=None), 404)


def test_wrong_method_is_405_with_allow(client: Client) -> None:
    response = client("PUT", "/jobs")  # GET lists jobs, POST sets one up
    assert_error(response, 405, "PUT")
    assert response.headers["Allow"] == "GET, POST"
    response = client("DELETE", "/jobs/1/files")
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, POST, PUT"


def test_unknown_manager_is_404(client: Client) -> None:
    assert_error(
        client("POST", "/managers/nope/jobs", {"job_id": "1"}), 404, "unknown manager 'nope'"
    )
    assert_error(client("GET", "/managers/nope/jobs/1/status"), 404, "nope")


def test_cache_routes_answer_404_without_a_cache(client: Client) -> None:
    assert_error(client("GET", "/cache/status", {"path": "x"}), 404, "file_cache_dir")
    assert_error(client("PUT", "/cache", {"path": "x"}), 404, "file_cache_dir")
    assert_error(client("POST", "/cache", {"path": "x"}), 404, "file_cache_dir")


def test_query_that_is_not_utf8_is_a_400(client: Client) -> None:
    response = client("GET", "/jobs/1/status", query=f"private_token={TOKEN}&x=%ff%fe")
    assert_error(response, 400)


def test_path_that_is_not_utf8_is_a_400_and_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lwr.access")
    assert_error(client("GET", "/jobs/%ff/status"), 400, "UTF-8")
    assert "/jobs/" in caplog.text and " 400 " in caplog.text


def test_nul_in_a_parameter_is_a_400(client: Client) -> None:
    client.setup("1")
    response = client("GET", "/jobs/1/files/path", {"type": "input", "name": "a\x00b"})
    assert_error(response, 400, "NUL")


def test_unexpected_exception_is_a_json_500_and_logged(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ctx: object) -> None:
        raise RuntimeError("database password is hunter2")

    patched = tuple(
        dataclasses.replace(c, route=dataclasses.replace(c.route, handler=broken))
        if c.route.pattern == "/jobs/{job_id}/status"
        else c
        for c in routes.COMPILED
    )
    monkeypatch.setattr(routes, "COMPILED", patched)
    caplog.set_level(logging.ERROR, logger="lwr.web.dispatch")
    response = client("GET", "/jobs/1/status")
    body = assert_error(response, 500, "internal server error")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert body == {"error": "internal server error; see the server log"}
    assert "hunter2" in caplog.text
    assert any(r.exc_info for r in caplog.records)  # the traceback is in the log, not the answer


def test_lwr_errors_of_status_500_are_logged(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(ctx: object) -> None:
        raise StagingError("cannot copy input.dat: disk full")

    patched = tuple(
        dataclasses.replace(c, route=dataclasses.replace(c.route, handler=failing))
        if c.route.pattern == "/jobs/{job_id}/cancel"
        else c
        for c in routes.COMPILED
    )
    monkeypatch.setattr(routes, "COMPILED", patched)
    caplog.set_level(logging.ERROR, logger="lwr.web.dispatch")
    assert_error(client("PUT", "/jobs/1/cancel"), 500, "disk full")
    assert "disk full" in caplog.text


# -- authorisation ----------------------------------------------------------------------------

PROTECTED = [
    ("POST", "/jobs"),
    ("POST", "/jobs/1/submit"),
    ("GET", "/jobs/1/status"),
    ("PUT", "/jobs/1/cancel"),
    ("DELETE", "/jobs/1"),
    ("POST", "/jobs/1/files"),
    ("PUT", "/jobs/1/files"),
    ("GET", "/jobs/1/files/path"),
    ("GET", "/jobs/1/files"),
    ("GET", "/cache/status"),
    ("PUT", "/cache"),
    ("POST", "/cache"),
    ("GET", "/managers/second/jobs/1/status"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_missing_or_wrong_token_is_403(client: Client, method: str, path: str) -> None:
    client.setup("1")
    assert_error(client(method, path, {"job_id": "2"}, token=None), 403, "private_token")
    assert_error(client(method, path, {"job_id": "2"}, token="wrong"), 403)
    assert_error(client(method, path, {"job_id": "2"}, token=""), 403)
    assert_error(client(method, path, {"job_id": "2"}, token=TOKEN[:-1]), 403)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Token"])
def test_token_in_the_authorization_header(client: Client, scheme: str) -> None:
    response = client(
        "GET", "/jobs/9/status", token=None, headers={"Authorization": f"{scheme} {TOKEN}"}
    )
    assert response.status_int == 200


@pytest.mark.parametrize("header", [f"Basic {TOKEN}", "Bearer wrong", "Bearer", TOKEN])
def test_bad_authorization_headers(client: Client, header: str) -> None:
    assert_error(
        client("GET", "/jobs/9/status", token=None, headers={"Authorization": header}), 403
    )


def test_a_wrong_query_token_is_not_rescued_by_a_header(client: Client) -> None:
    response = client(
        "GET", "/jobs/9/status", token="wrong", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert_error(response, 403)


def test_without_a_configured_token_no_check(make_client: AppFactory) -> None:
    open_client = make_client(private_token="")
    assert open_client("GET", "/jobs/9/status", token=None).status_int == 200


def test_redact_hides_the_token() -> None:
    assert (
        redact(f"/jobs/1/status?private_token={TOKEN}") == "/jobs/1/status?private_token=[redacted]"
    )
    assert redact(f"/x?job_id=1&private_token={TOKEN}&name=b") == (
        "/x?job_id=1&private_token=[redacted]&name=b"
    )
    assert redact(f"/x?private_token={TOKEN}&private_token=other") == (
        "/x?private_token=[redacted]&private_token=[redacted]"
    )
    assert redact("/x?job_id=1") == "/x?job_id=1"


@pytest.mark.parametrize("name", ["private%5Ftoken", "%70rivate_token", "private%5ftoken"])
def test_redact_sees_through_percent_encoded_names(name: str) -> None:
    assert redact(f"/x?{name}={TOKEN}&type=a") == "/x?private_token=[redacted]&type=a"


@pytest.mark.parametrize(
    "query",
    [
        f"private_token={TOKEN};job_id=1",
        f"job_id=1;private_token={TOKEN}",
        f"job_id=1%3Bprivate_token%3D{TOKEN}",
        f"name=a%26private_token%3D{TOKEN}",
        f"job_id=1&private_token={TOKEN};name=b",
    ],
)
def test_redact_splits_as_the_request_parser_does(query: str) -> None:
    """webob separates parameters on ``;`` too: the token is hidden however it was joined."""
    logged = redact(f"/jobs/1/status?{query}")
    assert TOKEN not in logged, logged


def test_redact_hides_every_value_not_known_to_be_harmless() -> None:
    """Structured parameters carry secrets too (Galaxy's files_endpoint job_key)."""
    staging = "remote_staging=%7B%22files_endpoint%22%3A%22http%3A//g/api%3Fjob_key%3Dk%22%7D"
    assert redact(f"/jobs/1/submit?{staging}&command_line=x") == (
        "/jobs/1/submit?remote_staging=[redacted]&command_line=[redacted]"
    )
    assert redact("/private_token=x") == "/private_token=x"
    assert redact("/x?private_token") == "/x?private_token=[redacted]"
    assert redact("/x?job_id=7&type=input&name=a.txt&tool_id=t&tool_version=1") == (
        "/x?job_id=7&type=input&name=a.txt&tool_id=t&tool_version=1"
    )


def test_a_percent_encoded_token_name_authenticates_and_is_still_hidden(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lwr.access")
    response = client("GET", "/jobs/9/status", query=f"private%5Ftoken={TOKEN}")
    assert response.status_int == 200
    assert TOKEN not in caplog.text
    assert "[redacted]" in caplog.text


def test_access_log_never_shows_the_token(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client("GET", "/jobs/9/status")
    client("GET", "/jobs/9/status", token="wrong-" + TOKEN)
    access = [r.getMessage() for r in caplog.records if r.name == "lwr.access"]
    assert len(access) == 2
    assert all("private_token=[redacted]" in line for line in access)
    assert TOKEN not in caplog.text
    assert " 200 " in access[0] and " 403 " in access[1]


# -- job life cycle ---------------------------------------------------------------------------


def test_setup_answer(client: Client) -> None:
    answer = client.setup("1")
    staging = client.app.config.staging_directory / "1"
    assert answer["job_id"] == "1"
    assert answer["working_directory"] == str(staging / "working")
    assert answer["outputs_directory"] == str(staging / "outputs")
    assert answer["job_directory"] == str(staging)
    assert answer["path_separator"] == os.sep
    assert answer["system_properties"] == {"separator": os.sep}
    assert answer["lwr_version"] == client.app.version
    assert answer["pulsar_version"] == PULSAR_PROTOCOL_VERSION
    assert Path(answer["working_directory"]).is_dir()


def test_setup_errors(client: Client) -> None:
    assert_error(client("POST", "/jobs", {}), 400, "'job_id'")
    assert_error(client("POST", "/jobs", {"job_id": ""}), 400, "'job_id'")
    assert_error(client("POST", "/jobs", {"job_id": ".."}), 400, "invalid job id")
    assert_error(client("POST", "/jobs", {"job_id": "a/b"}), 400, "invalid job id")


def test_setup_with_assigned_ids(make_client: AppFactory) -> None:
    uuid_client = make_client(assign_ids="uuid")
    answer = uuid_client.setup("1")
    assert answer["job_id"] != "1" and len(answer["job_id"]) == 32
    assert uuid_client.status(answer["job_id"])["status"] == "preprocessing"
    assert uuid_client.status("1")["status"] == "lost"


@BOTH_BACKENDS
def test_submit_and_complete(client: Client, wait_for: Callable[..., Any]) -> None:
    client.setup("1")
    response = client.submit(
        "1", 'echo "$GREETING"; exit 4', env=[{"name": "GREETING", "value": "hi there"}]
    )
    assert response.status_int == 200, response.text
    assert response.json == {"job_id": "1", "status": "queued"}
    status = client.final("1", wait_for)
    assert (status["status"], status["returncode"], status["stdout"]) == (
        "complete",
        4,
        "hi there\n",
    )


def test_final_status_reports_the_pulsar_version(
    make_client: AppFactory, wait_for: Callable[..., Any]
) -> None:
    """Galaxy decides how to find discovered outputs from the final status's pulsar_version:
    without it, it takes the server for Pulsar 0.6.0 (found with the real Galaxy)."""
    for options, version in (
        ({}, PULSAR_PROTOCOL_VERSION),
        ({"pulsar_protocol_version": "0.15.12"}, "0.15.12"),
    ):
        job_client = make_client(**options)
        assert job_client.setup("1")["pulsar_version"] == version
        job_client.submit("1", "true")
        assert job_client.final("1", wait_for)["pulsar_version"] == version


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "'command_line'"),
        ({"command_line": ""}, "'command_line'"),
        ({"command_line": "true", "env": "[{not json"}, "'env' is not valid JSON"),
        ({"command_line": "true", "env": '{"name": "A"}'}, "'env' has the wrong JSON type"),
        ({"command_line": "true", "params": "[]"}, "'params'"),
        (
            {"command_line": "true", "env": '[{"name": "A-B", "value": "x"}]'},
            "invalid environment variable name",
        ),
        (
            {
                "command_line": "true",
                "dependencies_description": '{"requirements": [{"name": "../x"}]}',
            },
            "invalid requirement",
        ),
    ],
)
def test_submit_errors(client: Client, params: dict[str, str], fragment: str) -> None:
    client.setup("1")
    assert_error(client("POST", "/jobs/1/submit", params), 400, fragment)
    assert client.status("1")["status"] == "preprocessing"  # nothing was queued


def test_submit_unknown_job_is_404_unless_setup_params_come_along(
    client: Client, wait_for: Callable[..., Any]
) -> None:
    assert_error(client.submit("7", "true"), 404, "unknown job '7'")
    response = client.submit(
        "7", "echo set-up-here", setup_params={"tool_id": "t", "tool_version": "1"}
    )
    assert response.status_int == 200
    assert client.final("7", wait_for)["stdout"] == "set-up-here\n"


def test_status_of_an_unknown_job_is_200_lost(client: Client) -> None:
    status = client.status("never-set-up")
    assert status["complete"] == "true"
    assert status["status"] == "lost"
    assert "never-set-up" in status["stderr"]


def test_status_of_a_bad_job_id_is_400(client: Client) -> None:
    assert_error(client("GET", "/jobs/a..b/status"), 400, "invalid job id")


def test_cancel_and_clean(client: Client, wait_for: Callable[..., Any]) -> None:
    client.setup("1")
    client.submit("1", "sleep 300")
    wait_for(lambda: client.status("1")["status"] == "running", what="the job to run")
    response = client("PUT", "/jobs/1/cancel")
    assert response.json == {"job_id": "1", "status": "cancelled"}
    assert client.status("1")["status"] == "cancelled"
    response = client("DELETE", "/jobs/1")
    assert response.json == {"job_id": "1", "cleaned": True}
    assert not (client.app.config.staging_directory / "1").exists()
    assert client.status("1")["status"] == "lost"
    assert_error(client("DELETE", "/jobs/1"), 404, "unknown job")
    assert_error(client("PUT", "/jobs/1/cancel"), 404, "unknown job")


def test_named_managers_are_separate(client: Client, wait_for: Callable[..., Any]) -> None:
    answer = client.setup("1", manager="/managers/second")
    assert "/second/1" in answer["job_directory"]
    assert client.status("1")["status"] == "lost"  # the default manager never heard of it
    client.submit("1", "echo second", manager="/managers/second")
    assert client.final("1", wait_for, manager="/managers/second")["stdout"] == "second\n"


def test_a_json_surrogate_in_dynamic_file_sources_does_not_break_status(
    client: Client, wait_for: Callable[..., Any]
) -> None:
    client.setup("1")
    params = {"command_line": "true", "dynamic_file_sources": '[{"path": "x\\ud800.json"}]'}
    assert client("POST", "/jobs/1/submit", params).status_int == 200
    assert client.final("1", wait_for)["realized_dynamic_file_sources"] == []


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
