"""Shared helpers of the WSGI dispatch tests: the in-process Client, its token, error checks.

The fixtures building applications (``make_client``, ``client``, ``safe_path_backend``) are in
this directory's conftest.py. Requests are built with ``webob.Request.blank`` and answered by the
real application over a real job store and real local managers in ``tmp_path``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from webob import Request, Response

from lwr.web.dispatch import LwrWsgiApp

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


BOTH_BACKENDS = pytest.mark.usefixtures("safe_path_backend")


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
