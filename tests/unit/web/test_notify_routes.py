"""``/profile/notifications`` in-process: a server without ``smtp_host`` refuses email channels."""

from __future__ import annotations

from pathlib import Path

from webob import Request

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.web.dispatch import LwrWsgiApp


def test_email_needs_an_smtp_host_but_a_webhook_does_not(tmp_path: Path) -> None:
    app = LwrApp(load_app_config({"private_token": "pt"}, here=tmp_path))
    try:
        _, token = app.users.add("alice")
        wsgi = LwrWsgiApp(app)

        def put(query: str) -> tuple[int, dict[str, object]]:
            request = Request.blank(
                f"/profile/notifications?private_token={token}&{query}", method="PUT"
            )
            response = request.get_response(wsgi)
            return response.status_int, response.json

        status, answer = put("email=alice%40example.org")
        assert status == 400 and "smtp_host" in str(answer["error"])
        status, answer = put("webhook_url=https%3A%2F%2Fhook.example%2Fin&webhook_secret=k")
        assert status == 200 and "webhook_secret" not in answer  # given, so not generated
        assert app.notify.channels("alice").webhook_secret == "k"
    finally:
        app.stop()
