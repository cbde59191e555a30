"""A browser without JavaScript over plain HTTP: the dashboard's session cookie and CSRF token.

Redirects are not followed (a test looks at each answer: a 303 to the sign-in page is how a page
says "not signed in"). Used by tests/integration/test_ui_sessions.py and, to fuzz signed-in
pages, by tests/integration/test_openapi_fuzz.py.
"""

from __future__ import annotations

import http.client
import re
import ssl
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_COOKIE = re.compile(r"lwr_session=([^;]*)")


@dataclass
class Answer:
    status: int
    location: str
    text: str


class DashboardClient:
    """One browser: the ``lwr_session`` cookie it was given, sent with every request."""

    def __init__(self, base_url: str, cookie: str = "") -> None:
        self.base = urlsplit(base_url)
        self.cookie = cookie

    def get(self, path: str) -> Answer:
        return self.send("GET", path)

    def post(self, path: str, form: dict[str, str]) -> Answer:
        body = urlencode(form).encode()
        return self.send("POST", path, body, "application/x-www-form-urlencoded")

    def send(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> Answer:
        connection: http.client.HTTPConnection
        if self.base.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            connection = http.client.HTTPSConnection(self.base.netloc, timeout=30, context=context)
        else:
            connection = http.client.HTTPConnection(self.base.netloc, timeout=30)
        headers = {"Content-Type": content_type} if content_type else {}
        if self.cookie:
            headers["Cookie"] = f"lwr_session={self.cookie}"
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                found = _COOKIE.search(header)
                if found:
                    self.cookie = found.group(1)
            return Answer(response.status, response.headers.get("Location", ""), text)
        finally:
            connection.close()

    def csrf(self, path: str = "/ui/sign-in") -> str:
        """The CSRF token of the page's forms (the session's)."""
        found = _CSRF.search(self.get(path).text)
        assert found is not None, f"no form on {path}"
        return found.group(1)

    def sign_in(self, token: str) -> Answer:
        answer = self.post("/ui/sign-in", {"token": token, "csrf_token": self.csrf(), "next": ""})
        assert answer.status == 303 and answer.location.endswith("/ui/jobs"), answer
        return answer

    def signed_in(self) -> bool:
        answer = self.get("/ui/jobs")
        assert answer.status in (200, 303), answer
        return answer.status == 200
