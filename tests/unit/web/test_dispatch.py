"""The WSGI application in-process: health, routing, errors and authorisation.

Requests are built with ``webob.Request.blank`` and answered by the real application over a real
job store and real local managers in ``tmp_path`` (the Client is in dispatch_support.py, the
fixtures in conftest.py). The job life cycle is in test_dispatch_jobs.py, files in
test_dispatch_files.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import pytest

from lwr.errors import StagingError
from lwr.web import routes
from lwr.web.dispatch import redact
from tests.unit.web.dispatch_support import (
    TOKEN,
    AppFactory,
    Client,
    assert_error,
)

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


def _replace_handler(
    monkeypatch: pytest.MonkeyPatch, pattern: str, handler: Callable[[object], None]
) -> None:
    """Route ``pattern`` to ``handler`` for this test (the compiled table is patched)."""
    patched = tuple(
        dataclasses.replace(c, route=dataclasses.replace(c.route, handler=handler))
        if c.route.pattern == pattern
        else c
        for c in routes.COMPILED
    )
    monkeypatch.setattr(routes, "COMPILED", patched)


def test_unexpected_exception_is_a_json_500_and_logged(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ctx: object) -> None:
        raise RuntimeError("database password is hunter2")

    _replace_handler(monkeypatch, "/jobs/{job_id}/status", broken)
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

    _replace_handler(monkeypatch, "/jobs/{job_id}/cancel", failing)
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


def test_with_the_access_log_off_no_access_line_is_built(
    client: Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample turns the access log off: then no request pays for redacting its URL (a
    second parse of the query), which the server otherwise did for every request."""
    from lwr.web import dispatch

    built: list[str] = []
    monkeypatch.setattr(dispatch, "redact", lambda text: built.append(text) or text)
    caplog.set_level(logging.WARNING, logger="lwr.access")
    assert client("GET", "/jobs/9/status").status_int == 200
    assert built == []
    caplog.set_level(logging.INFO, logger="lwr.access")
    assert client("GET", "/jobs/9/status").status_int == 200
    assert len(built) == 1
