"""Local backends: job scripts run as process groups on the server's own machine.

``queued_python`` lets at most ``max_concurrent_jobs`` run at once (the stateful layer keeps the
rest in its durable queue); ``unqueued`` starts every job at once. The ``launcher`` option
(:mod:`lwr.managers.launcher`) says what starts a job: bash with the job script, or the python
launcher where there is no bash (Windows). The reaper (:mod:`lwr.managers.reaper`: one thread
and a pidfd per process on Linux, a thread per process elsewhere) wakes the monitor the moment a
job ends, so completion is seen without polling delay. Processes outlive the server
on purpose: after a restart they are re-attached by pid and start time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from lwr import trace
from lwr.config import parse_concurrency, parse_seconds
from lwr.errors import ConfigurationError, SubmitError
from lwr.managers import launcher, process
from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec, Manager
from lwr.managers.directory import JOB_STDERR_NAME, JOB_STDOUT_NAME
from lwr.managers.reaper import Child, Reaper

log = logging.getLogger(__name__)


class _LocalManager(Manager):
    """Shared code of the local backends."""

    launch_inline = True
    starts_immediately = True
    known_options = frozenset({"launcher"})

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        self.poll_interval = parse_seconds(
            options.get("min_polling_interval", "1.0"), "min_polling_interval"
        )
        self._children: dict[str, Child] = {}
        self._lock = threading.Lock()
        self.reaper = Reaper(name)
        self.launcher = launcher.choose(options.get("launcher", "auto"))
        #: starts a job's process; a pool worker swaps in lwr.pool.tether's (jobs die with it)
        self.spawn: Callable[..., Child] = process.spawn
        log.info(
            "manager %s: jobs start with the %s launcher (%s)",
            name,
            self.launcher.name,
            " ".join(self.launcher.program),
        )

    def launch(self, spec: LaunchSpec) -> str:
        try:
            child = self.spawn(
                self.launcher.argv(spec),
                cwd=spec.job_directory,
                stdout=spec.job_directory / JOB_STDOUT_NAME,
                stderr=spec.job_directory / JOB_STDERR_NAME,
            )
        except OSError as exc:
            raise SubmitError(f"cannot start job {spec.job_id}: {exc}") from exc
        trace.mark(spec.manager, spec.job_id, "process started")
        self.reaper.watch(child, lambda: self._ended(spec))
        external_id = getattr(child, "external_id", None) or process.identity(child.pid)
        with self._lock:
            self._children[external_id] = child
        return external_id

    def shutdown(self) -> None:
        self.reaper.close()

    def _ended(self, spec: LaunchSpec) -> None:
        trace.mark(spec.manager, spec.job_id, "process ended")
        self.wake()

    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        statuses = {}
        for job in jobs:
            with self._lock:
                child = self._children.get(job.external_id)
            if child is not None:
                running = child.poll() is None
                if not running:
                    with self._lock:
                        first = self._children.pop(job.external_id, None) is not None
                    if first:  # a status request may see the end before the reaper's thread runs
                        trace.mark(job.spec.manager, job.spec.job_id, "process ended")
            else:
                running = process.is_alive(job.external_id)
            statuses[job.external_id] = ExternalStatus(
                JobState.RUNNING if running else JobState.COMPLETE
            )
        return statuses

    def cancel(self, job: ActiveJob) -> None:
        process.kill_group(job.external_id)
        with self._lock:
            child = self._children.pop(job.external_id, None)
        if child is not None:
            child.wait()


class QueuedPythonManager(_LocalManager):
    """Runs up to ``max_concurrent_jobs`` (an integer or ``*`` for the core count) at once."""

    type_name = "queued_python"
    known_options = _LocalManager.known_options | {"max_concurrent_jobs", "num_concurrent_jobs"}

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        if "max_concurrent_jobs" in options and "num_concurrent_jobs" in options:
            raise ConfigurationError(
                f"manager {name!r}: give max_concurrent_jobs or num_concurrent_jobs, not both"
            )
        raw = options.get("max_concurrent_jobs", options.get("num_concurrent_jobs", "1"))
        self.max_concurrent_jobs = parse_concurrency(raw)


class UnqueuedManager(_LocalManager):
    """Starts every job as soon as it is submitted."""

    type_name = "unqueued"
