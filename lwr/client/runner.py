"""Running a job end to end: set up, stage in, submit, wait, stage out, clean.

:func:`run_job` is the library's front door. Waiting is a separate, pluggable piece: the default
:class:`PollingWaiter` asks for the status with a growing but bounded interval; a message-queue
binding can instead feed :class:`CallbackWaiter` from its ``status_update`` consumer (call
:meth:`CallbackWaiter.notify` with each status dictionary) and the job finishes the moment the
server says so, with no polling at all.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lwr.client.actions import ClientActions
from lwr.client.api import FINAL_STATES, JobClient
from lwr.client.job import JobDescription
from lwr.client.stage_in import StagedJob, StageIn
from lwr.client.stage_out import Collected, collect_outputs
from lwr.errors import JobTimeoutError, LwrError

log = logging.getLogger(__name__)


class Waiter(Protocol):
    """Blocks until the job's status is final and returns that status dictionary."""

    def wait(self, client: JobClient, timeout: float | None) -> dict[str, Any]: ...


@dataclass
class PollingWaiter:
    """Polls ``status``: first after ``interval`` seconds, then 1.5 times longer each time, up to
    ``max_interval`` — quick for short jobs, cheap for long ones."""

    interval: float = 0.2
    max_interval: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def wait(self, client: JobClient, timeout: float | None) -> dict[str, Any]:
        """The final status; :class:`JobTimeoutError` once ``timeout`` seconds have really passed.

        The last sleep is cut to the deadline and the status asked once more there, so a job
        finishing just in time is not given up on early.
        """
        deadline = None if timeout is None else self.clock() + timeout
        wait = self.interval
        while True:
            status = client.status()
            if status.get("status") in FINAL_STATES:
                return status
            if deadline is not None:
                left = deadline - self.clock()
                if left <= 0:
                    raise JobTimeoutError(client.job_id, float(timeout or 0), status.get("status"))
                self.sleep(min(wait, left))
            else:
                self.sleep(wait)
            wait = min(wait * 1.5, self.max_interval)


class CallbackWaiter:
    """Waits for a status pushed from elsewhere (a message-queue consumer calls :meth:`notify`).

    If nothing arrives for ``fallback_interval`` seconds it asks the server once, so a lost
    message delays the job but never strands it.
    """

    def __init__(self, fallback_interval: float = 30.0) -> None:
        self.fallback_interval = fallback_interval
        self._final: dict[str, Any] | None = None
        self._event = threading.Event()

    def notify(self, status: dict[str, Any]) -> None:
        """Hand over a status dictionary; a final one wakes the waiting job."""
        if status.get("status") in FINAL_STATES:
            self._final = status
            self._event.set()

    def wait(self, client: JobClient, timeout: float | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise JobTimeoutError(client.job_id, float(timeout or 0), "no final status")
            step = self.fallback_interval if remaining is None else min(remaining, 30.0)
            if self._event.wait(min(step, self.fallback_interval)):
                assert self._final is not None
                return self._final
            self.notify(client.status())


@dataclass
class JobResult:
    """How the job went: its final status, what was staged, collected, and any failures."""

    job_id: str
    status: dict[str, Any]
    staged: StagedJob
    collected: Collected | None = None
    cleaned: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return str(self.status.get("status"))

    @property
    def returncode(self) -> int | None:
        code = self.status.get("returncode")
        return int(code) if code is not None else None

    @property
    def stdout(self) -> str:
        return str(self.status.get("stdout") or "")

    @property
    def stderr(self) -> str:
        return str(self.status.get("stderr") or "")

    @property
    def ok(self) -> bool:
        """The job ran (whatever its return code) and every output arrived."""
        return self.state == "complete" and not self.errors


def run_job(
    client: JobClient,
    description: JobDescription,
    actions: ClientActions | None = None,
    *,
    waiter: Waiter | None = None,
    timeout: float | None = None,
    clean: str = "onsuccess",
    on_setup: Callable[[str], None] | None = None,
) -> JobResult:
    """Run ``description`` on the server ``client`` talks to and collect its outputs.

    ``clean`` is ``always``, ``never`` or ``onsuccess`` (keep a failed job's directory on the
    server for a person to look at). Staging errors raise; a job that ran but whose outputs did
    not all arrive returns with ``errors`` set. ``timeout`` bounds the wait for the job to finish
    (:class:`~lwr.errors.JobTimeoutError`); the job is left as it is, for the caller to cancel.
    ``on_setup`` hears the job's id (the server's, if it assigned one) as soon as the job
    exists on the server, so a caller interrupted later knows what to cancel and clean.
    """
    actions = actions or ClientActions.load()
    scratch = Path(tempfile.mkdtemp(prefix="lwr-client-"))
    try:
        answer = client.setup(description.tool_id, description.tool_version)
        if on_setup is not None:
            on_setup(client.job_id)
        staged = StageIn(client, actions, description, answer, scratch).run()
        client_outputs = description.outputs.to_wire(
            description.working_directory, description.metadata_directory
        )
        remote_staging: dict[str, Any] = {
            "action_mapper": actions.to_wire(),
            "client_outputs": client_outputs,
        }
        if staged.setup_entries:
            remote_staging["setup"] = staged.setup_entries
        client.submit(
            staged.command_line,
            env=description.env,
            dependencies_description=description.dependencies_description,
            remote_staging=remote_staging,
            dynamic_file_sources=description.outputs.dynamic_file_sources,
            submit_params=description.submit_params,
        )
        status = (waiter or PollingWaiter()).wait(client, timeout)
        result = JobResult(client.job_id, status, staged)
        if status.get("status") == "complete":
            result.collected = collect_outputs(client, actions, client_outputs, status)
            result.errors.extend(result.collected.failures)
        else:
            reason = status.get("reason") or status.get("stderr") or ""
            result.errors.append(f"job ended {status.get('status')}: {reason}".strip())
        if clean == "always" or (clean == "onsuccess" and result.ok):
            try:
                client.clean()
                result.cleaned = True
            except LwrError as exc:
                log.warning("cleaning job %s failed: %s", client.job_id, exc.message)
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
