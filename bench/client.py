"""Jobs driven through Galaxy's own client (``pulsar.client``), the same calls for both servers.

We use the client's job API directly (setup, put_file, launch, raw_check_complete, fetch_output,
clean) rather than ``submit_job``/``finish_job``: those add Galaxy's path rewriting and metadata
handling, which cost the same for both servers and would only blur the difference between them.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulsar.client.manager import build_client_manager

TOOL_ID = "lwr_bench"
TOOL_VERSION = "1.0"


class JobFailed(RuntimeError):
    """A job did not end ``complete`` with return code 0, or its output was wrong."""


@dataclass(frozen=True)
class Poll:
    """How the client waits for a job: a status request every ``interval`` seconds."""

    interval: float = 0.01
    timeout: float = 120.0


Settle = Callable[[Path], None]


def _no_settle(path: Path) -> None:
    """No preparation before a timed transfer."""


class Driver:
    """One server's client: a ``pulsar.client`` manager with a fixed transport."""

    def __init__(self, url: str, transport: str, poll: Poll) -> None:
        # ClientManager prints its keyword arguments to stdout; keep our table readable.
        with contextlib.redirect_stdout(io.StringIO()):
            self._manager = build_client_manager(transport=transport)
        self.url = url
        self.transport = transport
        self.poll = poll
        #: status requests made by :meth:`wait` so far (client threads share the driver)
        self.polls = 0
        self._polls_lock = threading.Lock()

    def client(self, job_id: str) -> Any:
        return self._manager.get_client({"url": self.url}, job_id)

    def setup(self, client: Any) -> dict[str, Any]:
        """Set the job up; the answer names its remote directories."""
        answer = client.setup(tool_id=TOOL_ID, tool_version=TOOL_VERSION)
        if not isinstance(answer, dict) or "outputs_directory" not in answer:
            raise JobFailed(f"unexpected setup answer: {answer!r}")
        return answer

    def wait(self, client: Any) -> dict[str, Any]:
        """Poll until the job is complete; fail unless it ended ``complete`` with code 0."""

        def status() -> dict[str, Any]:
            with self._polls_lock:
                self.polls += 1
            answer: dict[str, Any] = client.raw_check_complete()
            return answer

        return wait_complete(status, client.job_id, self.poll)

    def copy_job(
        self,
        job_id: str,
        source: Path,
        destination: Path,
        *,
        clean: bool = True,
        marks: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """One whole job: stage ``source`` in, copy it remotely, stage the copy back out.

        Returns the seconds each protocol step took, so a slow job shows which step was slow.
        ``marks``, when given, receives the wall-clock time each step ended (and ``start``):
        the client's half of a trace (:mod:`bench.trace`), on the server's time line.
        """
        steps: dict[str, float] = {}
        mark = time.perf_counter()
        if marks is not None:
            marks["start"] = time.time()

        def step(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            steps[name] = now - mark
            mark = now
            if marks is not None:
                marks[name] = time.time()

        client = self.client(job_id)
        answer = self.setup(client)
        step("setup")
        remote_in = f"{answer['inputs_directory']}/{source.name}"
        remote_out = f"{answer['outputs_directory']}/{destination.name}"
        client.put_file(str(source), "input")
        step("upload")
        client.launch(f"cp {shlex.quote(remote_in)} {shlex.quote(remote_out)}")
        step("submit")
        self.wait(client)
        step("run+poll")
        client.fetch_output(str(destination), destination.name, None, "transfer", "output")
        step("download")
        if clean:
            client.clean()
            step("clean")
        return steps

    def true_job(self, job_id: str) -> None:
        """A job that does nothing, left finished and uncleaned (the scale test's history)."""
        client = self.client(job_id)
        self.setup(client)
        client.launch("true")
        self.wait(client)

    def status_seconds(self, job_id: str) -> float:
        """Seconds one status request of ``job_id`` takes, checking it is still known."""
        client = self.client(job_id)
        started = time.perf_counter()
        status = client.raw_check_complete()
        elapsed = time.perf_counter() - started
        if status.get("status") != "complete":
            raise JobFailed(f"job {job_id} should be complete, is {status.get('status')!r}")
        return elapsed

    def staged_job(
        self, job_id: str, source: Path, destination: Path, settle: Settle = _no_settle
    ) -> tuple[float, float]:
        """Upload ``source``, link it to an output remotely, download it: (up s, down s).

        ``settle(path)`` runs, untimed, before each transfer with the file it is about to read.
        """
        client = self.client(job_id)
        answer = self.setup(client)
        remote_in = f"{answer['inputs_directory']}/{source.name}"
        remote_out = f"{answer['outputs_directory']}/{destination.name}"
        settle(source)
        started = time.perf_counter()
        client.put_file(str(source), "input")
        up = time.perf_counter() - started
        # A hard link, not a copy: the job's own time is not what we measure.
        client.launch(f"ln {shlex.quote(remote_in)} {shlex.quote(remote_out)}")
        self.wait(client)
        settle(Path(remote_out))
        started = time.perf_counter()
        client.fetch_output(str(destination), destination.name, None, "transfer", "output")
        down = time.perf_counter() - started
        client.clean()
        return up, down

    def cli_staged_job(
        self, job_id: str, source: Path, destination: Path, settle: Settle = _no_settle
    ) -> tuple[float, float]:
        """As :meth:`staged_job`, but the bytes move with the ``curl`` program, not the client.

        The same routes and parameters, without ``pulsar.client`` in the data path: what the
        server itself can serve, to tell a client ceiling from a server one.
        """
        client = self.client(job_id)
        answer = self.setup(client)
        base = f"{self.url}jobs/{urllib.parse.quote(job_id)}/files?"
        settle(source)
        started = time.perf_counter()
        # -T streams the file from disk (PUT-style), -X POST keeps the protocol's method.
        _curl(
            ["-X", "POST", "-H", "Expect:", "-T", str(source)],
            base + urllib.parse.urlencode({"name": source.name, "type": "input"}),
        )
        up = time.perf_counter() - started
        remote_in = f"{answer['inputs_directory']}/{source.name}"
        remote_out = f"{answer['outputs_directory']}/{destination.name}"
        client.launch(f"ln {shlex.quote(remote_in)} {shlex.quote(remote_out)}")
        self.wait(client)
        settle(Path(remote_out))
        started = time.perf_counter()
        _curl(
            ["-o", str(destination)],
            base + urllib.parse.urlencode({"name": destination.name, "type": "output"}),
        )
        down = time.perf_counter() - started
        client.clean()
        return up, down


def _curl(args: list[str], url: str) -> None:
    subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", *args, url],
        check=True,
        stdout=subprocess.DEVNULL,
    )


class OwnClientDriver:
    """Staging through LWR's own client (:mod:`lwr.client`), against either server.

    Only what the staging measurement needs: the same job as :meth:`Driver.staged_job`, with
    the bytes moved by :class:`lwr.client.api.JobClient` (kept-alive connection, ``sendfile``
    up, ``splice`` down).
    """

    transport = "lwr-client"

    def __init__(self, url: str, poll: Poll) -> None:
        self.url = url
        self.poll = poll

    def staged_job(
        self, job_id: str, source: Path, destination: Path, settle: Settle = _no_settle
    ) -> tuple[float, float]:
        from lwr.client.api import JobClient

        client = JobClient(self.url, job_id)
        try:
            answer = client.setup(TOOL_ID, TOOL_VERSION)
            remote_in = f"{answer['inputs_directory']}/{source.name}"
            remote_out = f"{answer['outputs_directory']}/{destination.name}"
            settle(source)
            started = time.perf_counter()
            client.upload(source, "input", source.name)
            up = time.perf_counter() - started
            client.submit(f"ln {shlex.quote(remote_in)} {shlex.quote(remote_out)}")
            wait_complete(client.status, client.job_id, self.poll)
            settle(Path(remote_out))
            started = time.perf_counter()
            client.download("output", destination.name, destination)
            down = time.perf_counter() - started
            client.clean()
        finally:
            client.close()
        return up, down


def wait_complete(
    status_of: Callable[[], dict[str, Any]], job_id: str, poll: Poll
) -> dict[str, Any]:
    """Ask ``status_of()`` until the job is complete; fail unless it ended with code 0."""
    deadline = time.monotonic() + poll.timeout
    while True:
        status = status_of()
        if str(status.get("complete")).lower() == "true":
            break
        if time.monotonic() > deadline:
            raise JobFailed(f"job {job_id} not complete after {poll.timeout}s")
        time.sleep(poll.interval)
    if status.get("status") != "complete" or str(status.get("returncode")) != "0":
        raise JobFailed(
            f"job {job_id} ended {status.get('status')!r} "
            f"(return code {status.get('returncode')!r}): {status.get('stderr')!r}"
        )
    return status
