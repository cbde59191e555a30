"""Locust users of LWR as a shared job service: each holds its own service user's token.

A user lists their jobs, runs small jobs through the whole protocol (set up, upload an input,
submit a ``cat`` of it into an output, poll the status until the job ends, download the output
and check its bytes, usually clean), and looks at the plans, with think time between tasks.
Every protocol call is a request of its own in Locust's statistics (ids folded into ``{id}``);
the round trips of whole jobs are written at the end to ``LWR_LOAD_JOBS_OUT`` (a JSON file), and
a job that went wrong counts as a failure of request type ``JOB``.

Tokens, in order of preference:

- ``LWR_LOAD_TOKENS_FILE``: a file of tokens, one a line, made by the runner (``python -m
  bench.load``); the n-th Locust user takes line n (modulo their number);
- ``LWR_LOAD_ADMIN_TOKEN``: the server's ``private_token``; each Locust user then creates a
  service user of its own in ``on_start`` through the admin route ``POST /users``.

``LWR_LOAD_UI_SHARE`` (0..1, default 1/3) is the share of Locust users who use the web
dashboard instead, as a person in a browser (:mod:`bench.locust_ui`): they sign in with their
token through the form, list, submit a small file with the ``shout`` tool, reload the job's page
until it is done, download the result and check it, and sign out now and then.

``LWR_LOAD_POLL`` (seconds between status polls, default 0.5) and ``LWR_LOAD_JOB_TIMEOUT``
(seconds a job may take, default 120) tune the job task; ``LWR_LOAD_WAIT_MIN``/``_MAX`` the
think time (default 1-3 s).

Why ``FastHttpUser``: the load generator shares the machine with the server it measures, and
geventhttpclient spends several times less CPU per request than ``requests`` (``HttpUser``), so
at 200 users the numbers describe LWR rather than Locust. Nothing here needs what only
``requests`` offers (sessions with cookie jars, adapters).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, between, events, task
from locust.exception import StopUser

from bench.locust_ui import DashboardUser

_POLL = float(os.environ.get("LWR_LOAD_POLL", "0.5"))
_JOB_TIMEOUT = float(os.environ.get("LWR_LOAD_JOB_TIMEOUT", "120"))
_WAIT = (
    float(os.environ.get("LWR_LOAD_WAIT_MIN", "1")),
    float(os.environ.get("LWR_LOAD_WAIT_MAX", "3")),
)
#: how often a finished job is cleaned; the rest stay, so listings grow as a real user's do
_CLEAN_SHARE = 0.8
_FINAL = {"complete", "failed", "cancelled", "lost"}
#: the next line of the tokens file to hand out (gevent: users start one at a time)
_next_token = itertools.count()
#: milliseconds from setup to the checked download, every job of this Locust process
_ROUND_TRIPS: list[float] = []


def _tokens() -> list[str]:
    path = os.environ.get("LWR_LOAD_TOKENS_FILE")
    if not path:
        return []
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


_TOKENS = _tokens()
#: the share of users on the dashboard, as Locust weights out of 100
_UI_WEIGHT = min(99, max(0, round(100 * float(os.environ.get("LWR_LOAD_UI_SHARE", "0.3333")))))


def _take_token(client: Any) -> str:
    """The next token of the file, or a new service user's made with the admin token."""
    if _TOKENS:
        return _TOKENS[next(_next_token) % len(_TOKENS)]
    admin = os.environ.get("LWR_LOAD_ADMIN_TOKEN")
    if not admin:
        raise StopUser("set LWR_LOAD_TOKENS_FILE or LWR_LOAD_ADMIN_TOKEN")
    name = f"load-{uuid.uuid4().hex[:12]}"
    with client.post(
        f"/users?name={name}",
        headers={"Authorization": f"Bearer {admin}"},
        name="/users (admin)",
        catch_response=True,
    ) as resp:
        if resp.status_code != 200:
            resp.failure(f"user {name}: HTTP {resp.status_code} {resp.text[:200]}")
            raise StopUser()
        return str(resp.json()["token"])


class ServiceUser(FastHttpUser):
    """One person (or one Galaxy) using the shared service with a token of their own."""

    wait_time = between(*_WAIT)
    weight = 100 - _UI_WEIGHT
    #: a job is set up, uploaded and downloaded in under a second; a slow server shows as
    #: latency rather than as a Locust timeout, up to this
    network_timeout = 60.0
    connection_timeout = 60.0

    token = ""
    #: the user's token as a header, sent with every request (never in a logged URL)
    auth: dict[str, str]
    #: jobs of this user left on the server (not cleaned), which the status task looks at
    kept: list[str]

    def on_start(self) -> None:
        self.kept = []
        self.token = _take_token(self.client)
        self.auth = {"Authorization": f"Bearer {self.token}"}

    @task(4)
    def list_jobs(self) -> None:
        """The first page of the user's jobs, as the dashboard or ``lwr jobs`` shows it."""
        with self.client.get(
            "/jobs?limit=20", headers=self.auth, name="/jobs (list)", catch_response=True
        ) as resp:
            if resp.status_code != 200 or "jobs" not in (resp.json() or {}):
                resp.failure(f"HTTP {resp.status_code} {resp.text[:200]}")

    @task(1)
    def plans(self) -> None:
        """The plans and the user's own, as a profile page asks."""
        self.client.get("/plans", headers=self.auth, name="/plans")

    @task(1)
    def status_of_kept(self) -> None:
        """Look again at a job kept on the server (a finished one answers with its listings)."""
        if not self.kept:
            return
        job_id = random.choice(self.kept)
        self._get_json(f"/jobs/{job_id}/status", "/jobs/{id}/status (kept)")

    @task(3)
    def run_job(self) -> None:
        """One small job through the whole protocol; its round trip is reported as ``JOB``."""
        started = time.perf_counter()
        job_id = uuid.uuid4().hex[:16]
        payload = f"{job_id} {self.token[-6:]}\n".encode() * random.randint(1, 400)
        error: Exception | None = None
        try:
            self._run(job_id, payload)
        except _JobFailed as failed:
            error = failed
        elapsed_ms = (time.perf_counter() - started) * 1000
        _ROUND_TRIPS.append(elapsed_ms)
        if error is not None:
            # a job that went wrong with every request answered 200 (say, it ended `failed`)
            # must still count as a failure of the run
            events.request.fire(
                request_type="JOB",
                name="setup..download",
                response_time=elapsed_ms,
                response_length=0,
                exception=error,
                context={},
            )

    def _run(self, job_id: str, payload: bytes) -> None:
        setup = self._post_json(f"/jobs?job_id={job_id}", "/jobs (setup)")
        if setup is None:
            raise _JobFailed("setup")
        with self.client.post(
            f"/jobs/{job_id}/files?name=in.txt&type=input",
            data=payload,
            headers=self.auth,
            name="/jobs/{id}/files (upload)",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code} {resp.text[:200]}")
                raise _JobFailed("upload")
        sep = setup.get("system_properties", {}).get("separator", "/")
        source = f"{setup['inputs_directory']}{sep}in.txt"
        line = f"cat {source} > {setup['outputs_directory']}{sep}out.txt"
        submitted = self._post_json(
            f"/jobs/{job_id}/submit", "/jobs/{id}/submit", command_line=line
        )
        if submitted is None:
            raise _JobFailed("submit")
        self._wait(job_id)
        self._download(job_id, payload)
        if random.random() < _CLEAN_SHARE:
            self.client.delete(f"/jobs/{job_id}", headers=self.auth, name="/jobs/{id} (clean)")
        else:
            self.kept.append(job_id)

    def _wait(self, job_id: str) -> None:
        """Poll the status until the job ends; anything but ``complete`` with 0 is a failure."""
        deadline = time.monotonic() + _JOB_TIMEOUT
        while time.monotonic() < deadline:
            status = self._get_json(f"/jobs/{job_id}/status", "/jobs/{id}/status")
            if status is None:
                raise _JobFailed("status")
            if status.get("status") in _FINAL:
                if status["status"] != "complete" or str(status.get("returncode")) != "0":
                    raise _JobFailed(f"job ended {status.get('status')}: {status.get('stderr')}")
                return
            gevent.sleep(_POLL)
        raise _JobFailed(f"job {job_id} not finished in {_JOB_TIMEOUT}s")

    def _download(self, job_id: str, payload: bytes) -> None:
        with self.client.get(
            f"/jobs/{job_id}/files?name=out.txt&type=output",
            headers=self.auth,
            name="/jobs/{id}/files (download)",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200 or resp.content != payload:
                resp.failure(f"output of {job_id}: HTTP {resp.status_code}, bytes differ")
                raise _JobFailed("download")

    def _post_json(self, path: str, name: str, **data: str) -> dict[str, Any] | None:
        query = "&".join(f"{key}={_quote(value)}" for key, value in data.items())
        url = f"{path}{'&' if '?' in path else '?'}{query}" if query else path
        with self.client.post(url, headers=self.auth, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code} {resp.text[:200]}")
                return None
            return dict(resp.json())

    def _get_json(self, path: str, name: str) -> dict[str, Any] | None:
        with self.client.get(path, headers=self.auth, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code} {resp.text[:200]}")
                return None
            return dict(resp.json())


if _UI_WEIGHT:  # a weight of 0 is not allowed: no class at all then

    class BrowserUser(DashboardUser):
        """A person on the dashboard, with a token handed out as to the API users."""

        wait_time = between(*_WAIT)
        weight = _UI_WEIGHT
        poll = _POLL
        job_timeout = _JOB_TIMEOUT

        def take_token(self) -> str:
            return _take_token(self.client)


@events.quitting.add_listener
def _write_round_trips(environment: Any, **_kwargs: Any) -> None:
    """Jobs' round trips into ``LWR_LOAD_JOBS_OUT``: kept out of Locust's table, where they
    would swell the aggregate of HTTP requests with times that are mostly the job's own."""
    path = os.environ.get("LWR_LOAD_JOBS_OUT")
    if not path:
        return
    times = sorted(_ROUND_TRIPS)
    Path(path).write_text(
        json.dumps(
            {
                "jobs": len(times),
                "p50_ms": _rank(times, 0.50),
                "p95_ms": _rank(times, 0.95),
                "max_ms": times[-1] if times else None,
            }
        )
    )


def _rank(times: list[float], share: float) -> float | None:
    """Nearest-rank percentile of sorted ``times``."""
    if not times:
        return None
    return round(times[max(0, math.ceil(share * len(times)) - 1)], 1)


class _JobFailed(Exception):
    """A job round trip that did not end with the expected output (the step says where)."""


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
