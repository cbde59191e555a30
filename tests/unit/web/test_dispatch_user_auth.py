"""user_auth refusals through the real WSGI application: JSON body, status line, job state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from webob import Request

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.web.dispatch import LwrWsgiApp, _status_with_reason


@pytest.fixture
def wsgi(tmp_path: Path) -> Iterator[LwrWsgiApp]:
    """allow_all names everyone ``anonymous``; an empty userlist then refuses every job."""
    user_auth = {
        "authentication": [{"type": "allow_all"}],
        "authorization": [{"type": "userlist", "userlist_allowed_users": []}],
    }
    app = LwrApp(load_app_config({"user_auth": user_auth}, here=tmp_path))
    app.start()
    yield LwrWsgiApp(app)
    app.stop()


def test_a_refused_submit_is_a_403_naming_the_reason(wsgi: LwrWsgiApp) -> None:
    assert Request.blank("/jobs?job_id=1", method="POST").get_response(wsgi).status_int == 200
    response = Request.blank("/jobs/1/submit?command_line=true", method="POST").get_response(wsgi)
    assert response.status == (
        "403 Forbidden: user_auth: user 'anonymous' is not allowed to run jobs here"
    )
    assert json.loads(response.body) == {
        "error": "user_auth: user 'anonymous' is not allowed to run jobs here",
        "reason": "user_not_allowed",
    }
    status = Request.blank("/jobs/1/status").get_response(wsgi)
    assert json.loads(status.body)["status"] == "failed"


def test_the_status_line_stays_printable_ascii() -> None:
    line = _status_with_reason("403 Forbidden", "user 'ålice'\r\nX-Injected: 1" + "x" * 300)
    assert line.startswith("403 Forbidden: user '?lice'??X-Injected: 1")
    assert all(" " <= c <= "~" for c in line)
    assert len(line) == len("403 Forbidden: ") + 200
