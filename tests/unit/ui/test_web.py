"""The dashboard's gate through the real WSGI application (no browser): sign-in, sessions,
CSRF, revoked users, error pages. The browser tests (tests/integration/test_ui.py) cover the
pages themselves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from webob import Request, Response

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.ui import pages
from lwr.web.dispatch import LwrWsgiApp

ADMIN = "admin-token"


@pytest.fixture
def wsgi(tmp_path: Path) -> Iterator[LwrWsgiApp]:
    app = LwrApp(
        load_app_config({"private_token": ADMIN, "ui_tools": "show = cat $input"}, here=tmp_path)
    )
    app.start()
    yield LwrWsgiApp(app)
    app.stop()


class Browser:
    """A cookie jar over the WSGI app, as a browser without JavaScript would use it."""

    def __init__(self, wsgi: LwrWsgiApp) -> None:
        self.wsgi = wsgi
        self.cookie = ""

    def get(self, path: str) -> Response:
        return self._send(Request.blank(path))

    def post(self, path: str, form: dict[str, str]) -> Response:
        return self._send(Request.blank(path, POST=form))

    def _send(self, request: Request) -> Response:
        if self.cookie:
            request.headers["Cookie"] = f"lwr_session={self.cookie}"
        response = request.get_response(self.wsgi)
        found = re.search(r"lwr_session=([^;]*)", response.headers.get("Set-Cookie", ""))
        if found:
            self.cookie = found.group(1)
        return response

    def csrf(self, path: str = "/ui/sign-in") -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).text)
        assert found is not None
        return found.group(1)

    def sign_in(self, token: str) -> Response:
        return self.post("/ui/sign-in", {"token": token, "csrf_token": self.csrf(), "next": ""})


def _user(wsgi: LwrWsgiApp, name: str = "alice") -> str:
    return wsgi.app.users.add(name)[1]


def test_pages_redirect_to_sign_in(wsgi: LwrWsgiApp) -> None:
    response = Browser(wsgi).get("/ui/jobs?state=complete")
    assert response.status_int == 303
    assert response.location.endswith("/ui/sign-in?next=/ui/jobs%3Fstate%3Dcomplete")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "secure" not in cookie.lower()  # plain HTTP here; HTTPS: see the browser tests


def test_sign_in_replaces_the_session(wsgi: LwrWsgiApp) -> None:
    browser = Browser(wsgi)
    browser.csrf()
    before = browser.cookie
    response = browser.sign_in(_user(wsgi))
    assert response.status_int == 303 and response.location.endswith("/ui/jobs")
    assert browser.cookie != before
    assert browser.get("/ui/jobs").status_int == 200
    browser.cookie = before  # the id from before sign-in is worth nothing now
    assert browser.get("/ui/jobs").status_int == 303


def test_posts_without_the_csrf_token_are_refused(wsgi: LwrWsgiApp) -> None:
    browser = Browser(wsgi)
    browser.sign_in(_user(wsgi))
    for form in ({"plan": "premium"}, {"plan": "premium", "csrf_token": "x"}):
        response = browser.post("/ui/profile/plan", form)
        assert response.status_int == 403 and "security token" in response.text
    assert wsgi.app.users.get("alice").plan == "free"
    csrf = browser.csrf("/ui/profile")
    assert (
        browser.post("/ui/profile/plan", {"plan": "premium", "csrf_token": csrf}).status_int == 303
    )
    assert wsgi.app.users.get("alice").plan == "premium"


def test_an_unreadable_form_is_a_400_page(wsgi: LwrWsgiApp) -> None:
    """A multipart type without a boundary (found by schemathesis) is the client's mistake."""
    browser = Browser(wsgi)
    browser.sign_in(_user(wsgi))
    for path in ("/ui/sign-in", "/ui/sign-out", "/ui/profile/plan", "/ui/profile/notifications"):
        request = Request.blank(path, method="POST", body=b"csrf_token=&token=")
        request.content_type = "multipart/form-data"  # no boundary
        response = browser._send(request)  # signed in: every page reaches its form
        assert response.status_int == 400, (path, response.status)
        assert "form cannot be read" in response.text and response.content_type == "text/html"


def test_a_revoked_user_is_signed_out(wsgi: LwrWsgiApp) -> None:
    browser = Browser(wsgi)
    browser.sign_in(_user(wsgi))
    wsgi.app.users.revoke("alice")
    assert browser.get("/ui/jobs").status_int == 303


def test_unknown_tokens_are_refused_and_the_admin_token_signs_in(wsgi: LwrWsgiApp) -> None:
    browser = Browser(wsgi)
    assert browser.sign_in("lwr_guess").status_int == 403
    assert browser.sign_in(ADMIN).status_int == 303
    assert browser.get("/ui/jobs").status_int == 200


def test_an_open_server_gives_no_admin_session(tmp_path: Path) -> None:
    """Without private_token the API is open, but the dashboard signs in users only."""
    app = LwrApp(load_app_config({}, here=tmp_path))
    app.start()
    try:
        assert Browser(LwrWsgiApp(app)).sign_in("anything").status_int == 403
    finally:
        app.stop()


def test_errors_are_pages_without_internals(
    wsgi: LwrWsgiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = Browser(wsgi)
    browser.sign_in(_user(wsgi))
    assert browser.get("/ui/jobs?state=nope").status_int == 400
    assert browser.get("/ui/jobs/nope").status_int == 404

    def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(pages, "list_jobs", broken)
    response = browser.get("/ui/jobs")
    assert response.status_int == 500 and response.content_type == "text/html"
    assert "secret internals" not in response.text and "Traceback" not in response.text


def test_the_job_list_pages_and_filters(wsgi: LwrWsgiApp) -> None:
    token = _user(wsgi)
    for number in range(pages.PAGE_SIZE + 1):
        setup = Request.blank(f"/jobs?job_id=j{number}&private_token={token}", method="POST")
        assert setup.get_response(wsgi).status_int == 200
    browser = Browser(wsgi)
    browser.sign_in(token)
    first = browser.get("/ui/jobs").text
    assert first.count('class="job"') == pages.PAGE_SIZE and ">j20<" in first
    found = re.search(r'id="next-page" href="([^"]+)"', first)
    assert found is not None
    second = browser.get(found.group(1).replace("&amp;", "&")).text
    assert second.count('class="job"') == 1 and ">j0<" in second and "next-page" not in second
    assert 'id="no-jobs"' in browser.get("/ui/jobs?state=complete").text
    assert browser.get("/ui/jobs?state=setup").text.count('class="job"') == pages.PAGE_SIZE


def test_notification_channels_are_set_from_the_profile(wsgi: LwrWsgiApp) -> None:
    browser = Browser(wsgi)
    browser.sign_in(_user(wsgi))
    page = browser.get("/ui/profile").text
    assert 'id="notify-webhook"' in page and 'id="notify-email"' not in page  # no smtp_host
    form = {"webhook_url": "https://hooks.example/lwr", "csrf_token": browser.csrf("/ui/profile")}
    answer = browser.post("/ui/profile/notifications", form)
    found = re.search(r'id="webhook-secret">[^<]*<code>([^<]+)</code>', answer.text)
    assert answer.status_int == 200 and found is not None  # the generated secret, shown once
    channels = wsgi.app.notify.channels("alice")
    assert channels.webhook_url == "https://hooks.example/lwr"
    assert channels.webhook_secret == found.group(1)
    assert "webhook-secret" not in browser.get("/ui/profile").text
    form = {"webhook_url": "", "csrf_token": browser.csrf("/ui/profile")}
    assert browser.post("/ui/profile/notifications", form).status_int == 200
    assert wsgi.app.notify.channels("alice").webhook_url is None
    assert browser.post("/ui/profile/notifications", {"webhook_url": "x"}).status_int == 403


def test_a_job_link_without_its_manager_finds_the_job(wsgi: LwrWsgiApp) -> None:
    """Notifications link to /ui/jobs/{id} without the manager: every manager is looked in."""
    token = _user(wsgi)
    setup = Request.blank(f"/jobs?job_id=7&private_token={token}", method="POST")
    assert setup.get_response(wsgi).status_int == 200
    browser = Browser(wsgi)
    browser.sign_in(token)
    assert browser.get("/ui/jobs/7").status_int == 200
    assert browser.get("/ui/jobs/8").status_int == 404
