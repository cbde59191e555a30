"""A Locust user of LWR's dashboard (``/ui/``), doing what a person in a browser does.

It signs in through the form (GET the page, read the CSRF token out of it, POST the token with
the user's own LWR token; the session cookie is kept by the client's cookie jar), lists its
jobs, submits a small file through the submit form (multipart, one of the admin's ``ui_tools``:
the runner declares ``shout``, which upper-cases the file into ``$outputs/shout.txt``), reloads
the job's page until it shows a final state, downloads the result through the page's link and
checks its bytes, looks at its profile, and now and then signs out (and in again at its next
page). Redirects are not followed by the client but requested as the browser would, so each page
is a request of its own in Locust's statistics (``UI ...`` names).

A job that went wrong (its page says ``failed``, or the result differs) is a failure of request
type ``UI JOB``, as ``JOB`` is for the API users. ``abstract``: the locustfile subclasses it with
the way it hands out tokens.
"""

from __future__ import annotations

import html
import random
import re
import time
import uuid
from typing import Any, cast
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, between, events, task

#: the tool the runner declares in ``ui_tools`` (bench/load.py), and what it makes of a file
TOOL = "shout"
TOOL_TEMPLATE = "tr a-z A-Z < $input > $outputs/shout.txt"
RESULT = "shout.txt"

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
_STATE = re.compile(r'id="job-state">([a-z_]+)<')
_RESULT_LINK = re.compile(r'class="result" href="([^"]+)"')
_FINAL = {"complete", "failed", "cancelled", "lost"}
#: how often a pass ends with signing out (the next page then signs in again)
_SIGN_OUT_SHARE = 0.15


class DashboardUser(FastHttpUser):
    """A person using the dashboard with their token; subclasses say where tokens come from."""

    abstract = True
    wait_time = between(1, 3)
    network_timeout = 60.0
    connection_timeout = 60.0
    #: seconds between reloads of a job's page, and how long a job may take
    poll = 0.5
    job_timeout = 120.0

    token = ""
    #: the CSRF token of the page last seen (the session's, once signed in)
    csrf = ""
    signed_in = False

    def take_token(self) -> str:
        """The LWR token this user signs in with."""
        raise NotImplementedError

    def on_start(self) -> None:
        self.token = self.take_token()
        self.sign_in()

    def sign_in(self) -> None:
        """GET the form (a fresh session and its CSRF token), POST the token, follow to jobs."""
        page = self._page("/ui/sign-in", "UI /ui/sign-in (form)")
        found = _CSRF.search(page or "")
        if found is None:
            self._fail("UI sign-in", "no CSRF token in the sign-in form")
            return
        body = urlencode({"csrf_token": found[1], "next": "/ui/jobs", "token": self.token})
        location = self._post("/ui/sign-in", "UI /ui/sign-in (post)", body)
        if location is not None:
            self.signed_in = True
            self._page(location, "UI /ui/jobs")

    @task(4)
    def list_jobs(self) -> None:
        if not self.signed_in:  # signed out at the end of an earlier pass
            self.sign_in()
        self._page("/ui/jobs", "UI /ui/jobs")

    @task(1)
    def profile(self) -> None:
        if not self.signed_in:
            self.sign_in()
        self._page("/ui/profile", "UI /ui/profile")

    @task(3)
    def submit_and_download(self) -> None:
        """The submit form, a small file through it, the job's page until done, the result."""
        started = time.perf_counter()
        try:
            self._round_trip()
            error: Exception | None = None
        except _UiJobFailed as failed:
            error = failed
        if error is not None:
            self._fail("UI submit..download", str(error), time.perf_counter() - started)
        if random.random() < _SIGN_OUT_SHARE:
            self._post("/ui/sign-out", "UI /ui/sign-out", urlencode({"csrf_token": self.csrf}))
            self.signed_in = False

    def _round_trip(self) -> None:
        if not self.signed_in:
            self.sign_in()
        if self._page("/ui/submit", "UI /ui/submit (form)") is None:
            raise _UiJobFailed("submit form")
        text = f"{uuid.uuid4().hex} from the dashboard\n" * random.randint(1, 200)
        location = self._submit(text.encode())
        if location is None or not location.startswith("/ui/jobs/"):
            raise _UiJobFailed(f"submit answered {location!r}")
        link = self._wait(location)
        with self.client.get(
            link, name="UI /ui/jobs/{id}/files (download)", catch_response=True
        ) as resp:
            if resp.status_code != 200 or resp.content != text.upper().encode():
                resp.failure(f"{link}: HTTP {resp.status_code}, bytes differ")
                raise _UiJobFailed("download")

    def _submit(self, payload: bytes) -> str | None:
        """The submit form as a browser sends it: multipart, CSRF token, tool, file."""
        boundary = f"----lwrload{uuid.uuid4().hex}"
        parts = [
            _field(boundary, "csrf_token", self.csrf.encode()),
            _field(boundary, "tool", TOOL.encode()),
            _field(boundary, "file", payload, filename="notes.txt"),
        ]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self._post(
            "/ui/submit", "UI /ui/submit (post)", body, f"multipart/form-data; boundary={boundary}"
        )

    def _wait(self, location: str) -> str:
        """Reload the job's page until its state is final; the result's download link."""
        deadline = time.monotonic() + self.job_timeout
        while time.monotonic() < deadline:
            page = self._page(location, "UI /ui/jobs/{id}")
            state = _STATE.search(page or "")
            if state is None:
                raise _UiJobFailed(f"no state on {location}")
            if state[1] in _FINAL:
                link = _RESULT_LINK.search(page or "")
                if state[1] != "complete" or link is None:
                    raise _UiJobFailed(f"{location} ended {state[1]} (result link: {bool(link)})")
                return html.unescape(link[1])
            gevent.sleep(self.poll)
        raise _UiJobFailed(f"{location} not finished in {self.job_timeout}s")

    def _page(self, path: str, name: str) -> str | None:
        """GET an HTML page (200 expected); remember the session's CSRF token from it."""
        with self.client.get(path, name=name, allow_redirects=False, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"{path}: HTTP {resp.status_code} {(resp.text or '')[:200]}")
                return None
            text = resp.text or ""
            found = _CSRF.search(text)
            if found is not None:
                self.csrf = found[1]
            return text

    def _post(self, path: str, name: str, body: str | bytes, kind: str | None = None) -> str | None:
        """POST a form; a 303 is success and its ``Location`` path is returned."""
        headers = {"Content-Type": kind or "application/x-www-form-urlencoded"}
        # geventhttpclient sends bytes as they are (the multipart body)
        with self.client.post(
            path,
            data=cast(Any, body),
            headers=headers,
            name=name,
            allow_redirects=False,
            catch_response=True,
        ) as resp:
            if resp.status_code != 303:
                resp.failure(f"{path}: HTTP {resp.status_code} {(resp.text or '')[:200]}")
                return None
            location = str(resp.headers.get("location") or "")
            return re.sub(r"^https?://[^/]+", "", location)

    def _fail(self, name: str, message: str, seconds: float = 0.0) -> None:
        events.request.fire(
            request_type="UI JOB",
            name=name,
            response_time=seconds * 1000,
            response_length=0,
            exception=_UiJobFailed(message),
            context={},
        )


def _field(boundary: str, name: str, value: bytes, filename: str | None = None) -> bytes:
    """One part of a multipart/form-data body."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"\r\nContent-Type: text/plain'
    return f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


class _UiJobFailed(Exception):
    """A dashboard job that did not end with the expected result (the message says where)."""
