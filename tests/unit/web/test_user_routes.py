"""The service's HTTP routes (users, listing, metrics) as the OpenAPI description promises them.

Regression tests for what schemathesis found against a running server
(tests/integration/test_openapi_fuzz.py), each at the HTTP level, in-process.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webob import Request

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.web.dispatch import LwrWsgiApp

TOKEN = "admin-secret"


@pytest.fixture
def wsgi(tmp_path: Path) -> Iterator[LwrWsgiApp]:
    (tmp_path / "job_managers.ini").write_text("[manager:_default_]\ntype = queued_python\n")
    app = LwrApp(load_app_config({"private_token": TOKEN}, here=tmp_path))
    yield LwrWsgiApp(app)
    app.stop()


def call(wsgi: LwrWsgiApp, method: str, path: str, token: str = TOKEN) -> tuple[int, Any]:
    separator = "&" if "?" in path else "?"
    request = Request.blank(f"{path}{separator}private_token={token}", method=method)
    response = request.get_response(wsgi)
    return response.status_int, response.json_body


def test_a_second_revoke_is_a_conflict_not_a_bad_request(wsgi: LwrWsgiApp) -> None:
    """Found by fuzzing: a well-formed revoke of a revoked user answered 400."""
    assert call(wsgi, "POST", "/users?name=alice")[0] == 200
    assert call(wsgi, "DELETE", "/users/alice")[0] == 200
    status, body = call(wsgi, "DELETE", "/users/alice")
    assert status == 409 and "revoked already" in body["error"]


def test_a_user_name_with_a_final_newline_is_refused(wsgi: LwrWsgiApp) -> None:
    """``$`` matched before a final newline: ``alice\\n`` was taken as a user name."""
    status, body = call(wsgi, "POST", "/users?name=alice%0A")
    assert status == 400 and "invalid user name" in body["error"]
    assert call(wsgi, "GET", "/users")[1] == {"users": []}


def test_a_page_token_past_64_bits_is_a_bad_request(wsgi: LwrWsgiApp) -> None:
    """A page token holding a number SQLite cannot bind was a 500 (OverflowError)."""
    token = base64.urlsafe_b64encode(b"seq:" + b"9" * 30).decode().rstrip("=")
    status, body = call(wsgi, "GET", f"/jobs?page_token={token}")
    assert status == 400 and "page_token" in body["error"]


def test_admin_routes_refuse_a_users_token(wsgi: LwrWsgiApp) -> None:
    user_token = call(wsgi, "POST", "/users?name=bob")[1]["token"]
    for method, path in (("GET", "/users"), ("GET", "/users/bob"), ("DELETE", "/users/bob")):
        status, body = call(wsgi, method, path, user_token)
        assert status == 403 and "admin token" in body["error"], (method, path)
    status, body = call(wsgi, "GET", "/plans", user_token)
    assert status == 200 and body["current"] == "free"


def test_metrics_are_labelled_as_the_classic_text_format(wsgi: LwrWsgiApp) -> None:
    response = Request.blank("/metrics").get_response(wsgi)  # public by default
    assert response.status_int == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
