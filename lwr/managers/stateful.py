"""The stateful layer around a backend: persistence, queueing, recovery, callbacks.

Every backend gets the same guarantees from this one class:

* each transition is written to the job store before it is acted on, so ``kill -9`` at any moment
  loses nothing and never runs a job twice (a job caught mid-launch is looked for with the backend's
  ``find_orphan`` and otherwise reported ``lost``, never relaunched);
* submits are queued durably and handed to the backend while it has capacity;
* a monitor thread polls launched jobs and turns the job script's recorded return code into the
  final state;
* listeners (the message-queue binding) hear about every state change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lwr import trace
from lwr.errors import InvalidJobStateError, LwrError, UnknownJobError
from lwr.managers import dependencies, launcher, layout, namespace, script
from lwr.managers.admission import Admission
from lwr.managers.base import ActiveJob, JobState, LaunchSpec, Manager
from lwr.managers.directory import JobDirectory
from lwr.managers.monitor import Monitor
from lwr.managers.recovery import Recovery
from lwr.managers.server_staging import ServerStaging, Stager
from lwr.managers.status import completion
from lwr.persistence.store import LAUNCHED, PENDING, JobRecord, JobStore
from lwr.pulsar_version import PULSAR_PROTOCOL_VERSION
from lwr.tools.authorization import ToolAuthorizer

if TYPE_CHECKING:
    from lwr.auth.checker import UserAuth

log = logging.getLogger(__name__)

Listener = Callable[["StatefulManager", JobRecord], None]


class Instrument(Protocol):
    """Job metrics (:mod:`lwr.job_metrics`): shell commands run around a job's command."""

    def commands(self, metadata_directory: Path) -> tuple[str, str]: ...


class StatefulManager(ServerStaging, Monitor, Recovery):
    """A named job manager as the web and messaging layers see it."""

    def __init__(
        self,
        backend: Manager,
        store: JobStore,
        staging_directory: Path,
        tool_dependency_dir: Path | None = None,
        maximum_stream_size: int = 1024 * 1024,
        stager: Stager | None = None,
        retention: float = 0.0,
        staging_threads: int = 4,
        user_auth: UserAuth | None = None,
        authorizer: ToolAuthorizer | None = None,
        instrument: Instrument | None = None,
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.store = store
        self.staging_directory = staging_directory
        self.tool_dependency_dir = tool_dependency_dir
        self.maximum_stream_size = maximum_stream_size
        self.listeners: list[Listener] = []
        self.stager = stager
        self.retention = retention
        #: user_auth and the tool whitelist (lwr.managers.admission)
        self.admission = Admission(backend.name, user_auth, authorizer)
        self.instrument = instrument
        self._staging_threads = staging_threads
        #: job ids this manager refuses because they name another manager's directory
        self.reserved_ids: frozenset[str] = frozenset()
        #: ``pulsar_version`` of the final status: Galaxy reads its gates there too, not only
        #: in the setup answer (its discovered-output collection is decided at finish)
        self.pulsar_version = PULSAR_PROTOCOL_VERSION
        self._staging: ThreadPoolExecutor | None = None
        self._lock = threading.RLock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        backend.bind(self._wakeup.set)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Recover unfinished jobs from the store, then start the monitor thread."""
        self.staging_directory.mkdir(parents=True, exist_ok=True)
        self._staging = ThreadPoolExecutor(
            max_workers=self._staging_threads, thread_name_prefix=f"lwr-staging-{self.name}"
        )
        self._recover()
        homes = [self.staging_directory, *namespace.user_directories(self.staging_directory)]
        for leftover in (path for home in homes for path in home.glob(".deleting-*")):
            # directories a crash left half-deleted by clean(); finish the job quietly
            self._staging.submit(JobDirectory(leftover).delete)
        self._thread = threading.Thread(
            target=self._monitor, name=f"lwr-monitor-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop monitoring; running jobs keep running and are re-attached on the next start."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._staging is not None:
            self._staging.shutdown(wait=False, cancel_futures=True)
        self.backend.shutdown()

    # -- the operations of the protocol -----------------------------------------------------

    def directory(self, job_id: str) -> JobDirectory:
        """A stored job id's directory (a user's in their namespace: lwr.managers.namespace)."""
        owner, _ = namespace.split(job_id)
        if owner is None and job_id in self.reserved_ids:
            layout.check_default_job_id(job_id, self.reserved_ids)
        return JobDirectory(namespace.job_path(self.staging_directory, job_id))

    def record(self, job_id: str) -> JobRecord:
        """The job's record, or UnknownJobError naming the id as its client knows it."""
        record = self.store.get(self.name, namespace.checked(job_id))
        if record is None:
            raise UnknownJobError(namespace.client_id(job_id), self.name)
        return record

    def find(self, job_id: str) -> JobRecord | None:
        return self.store.get(self.name, namespace.checked(job_id))

    def setup(
        self, job_id: str, tool_id: str | None = None, tool_version: str | None = None
    ) -> JobRecord:
        """Create the job's directory, or start a fresh attempt of a finished job.

        Setting up a job that is waiting or running changes nothing (a retried request must not
        disturb it); a job that finished gets a new attempt with an emptied directory, because
        Galaxy resubmits failed jobs under the same id.
        """
        self.admission.check_tool(job_id, tool_id, tool_version)
        with self._lock:
            directory = self.directory(job_id)
            record = self.store.get(self.name, job_id)
            if record is not None and not record.state.is_final:
                log.info(
                    "job %s/%s: setup repeated while %s; nothing changed",
                    self.name,
                    job_id,
                    record.state.value,
                )
                directory.create()
                return record
            meta = {"tool_id": tool_id, "tool_version": tool_version}
            if record is None:
                directory.create()
                record = JobRecord(self.name, job_id, launch={"setup": meta})
                log.info("job %s/%s: set up (tool %s %s)", self.name, job_id, tool_id, tool_version)
            else:
                directory.wipe()
                record = JobRecord(
                    self.name, job_id, attempt=record.attempt + 1, launch={"setup": meta}
                )
                log.info("job %s/%s: set up again, attempt %d", self.name, job_id, record.attempt)
            return self.store.put(record)

    def submit(self, job_id: str, launch: Mapping[str, Any]) -> JobRecord:
        """Queue the job with its command line; a repeated submit of one attempt is ignored."""
        script.check_launch(launch)
        launch = self._check_user(job_id, launch)
        with self._lock:
            record = self.store.get(self.name, namespace.checked(job_id))
            if record is None:
                if launch.get("setup_params") is None:
                    raise UnknownJobError(namespace.client_id(job_id), self.name)
                setup = launch.get("setup_params") or {}
                record = self.setup(job_id, setup.get("tool_id"), setup.get("tool_version"))
            if record.state is not JobState.SETUP:
                log.info(
                    "job %s/%s: duplicate submit ignored (%s)",
                    self.name,
                    job_id,
                    record.state.value,
                )
                return record
            directory = self.directory(job_id)
            if not directory.exists():
                raise InvalidJobStateError(f"job {job_id!r} has no directory; set it up again")
            command_line = str(launch.get("command_line") or "")
            self.admission.check_queued(
                record, directory, script.with_job_directory(command_line, directory)
            )
            dependency_files = dependencies.resolve(
                self.tool_dependency_dir, launch.get("dependencies_description")
            )
            text = script.render(
                directory,
                job_id,
                record.attempt,
                command_line,
                launch.get("env"),
                dependency_files,
                instrument=self._instrument_commands(directory),
            )
            script.write(directory, text)
            command = str(launch.get("command_line") or "")
            # job.json beside job.sh: what the python launcher (no bash, e.g. Windows) runs
            launcher.write_spec(directory, job_id, record.attempt, command, launch.get("env"),
                                dependency_files)  # fmt: skip
            stored = dict(record.launch or {})
            stored.update({k: v for k, v in launch.items() if k != "command_line"})
            stage_in = self.stager is not None and self.stager.needs_stage_in(stored)
            state = JobState.PREPROCESSING if stage_in else JobState.QUEUED
            record = self.store.put(record.evolve(state=state, launch_state=PENDING, launch=stored))
            trace.mark(self.name, job_id, state.value)
            log.info("job %s/%s: %s (attempt %d)", self.name, job_id, state.value, record.attempt)
        self._notify(record)
        if stage_in:
            self._in_background(self._stage_in, record)
        elif self.backend.launch_inline:
            self._dispatch_now()
        else:
            self._wakeup.set()
        return record

    def _check_user(self, job_id: str, launch: Mapping[str, Any]) -> Mapping[str, Any]:
        """Run a new job through ``user_auth``; a refused one is recorded ``failed`` with why.

        Outside the lock: the check may wait on Galaxy's token endpoint and the JWKS. A repeated
        submit of a job already accepted is not judged again (its token may have expired since).
        """
        if self.admission.user_auth is None:
            return launch
        record = self.find(job_id)
        if record is None and launch.get("setup_params") is None:
            return launch  # an unknown job: submit answers 404 without asking anyone
        if record is not None and record.state is not JobState.SETUP:
            return launch
        try:
            return self.admission.identify(job_id, launch)
        except LwrError as exc:
            if record is not None:
                self._settle(record, JobState.FAILED, exc.message)
            raise

    def check_upload(self, job_id: str, file_type: str, name: str, path: Path) -> None:
        """Refuse (and delete) an uploaded tool or config file the tool whitelist forbids."""
        if self.admission.authorizer.enabled:
            root = self.directory(job_id).root
            self.admission.check_upload(self.record(job_id), root, file_type, name, path)

    def _instrument_commands(self, directory: JobDirectory) -> tuple[str, str]:
        """Job metrics' shell commands before and after the command ("" without metrics)."""
        if self.instrument is None:
            return "", ""
        return self.instrument.commands(directory.sub("metadata"))

    def _dispatch_now(self) -> None:
        """Start queued jobs in the caller's thread (cheap local launches): saves a hand-off."""
        try:
            self._dispatch()
        except Exception:
            log.exception(
                "manager %s: dispatch after submit failed; the monitor retries", self.name
            )
            self._wakeup.set()

    def cancel(self, job_id: str) -> JobRecord:
        """Dequeue a waiting job or kill a running one; a finished job is left as it is."""
        with self._lock:
            record = self.record(job_id)
            if record.state.is_final:
                return record
            launched = record.launch_state == LAUNCHED and record.external_id
            if launched:
                try:
                    self.backend.cancel(self._active(record))
                except LwrError as exc:
                    log.warning("job %s/%s: cancel failed: %s", self.name, job_id, exc)
                    raise
            record = self.store.put(
                record.evolve(state=JobState.CANCELLED, reason="cancelled by the client")
            )
            log.info(
                "job %s/%s: cancelled (%s)", self.name, job_id, "killed" if launched else "dequeued"
            )
        self._notify(record)
        self._wakeup.set()
        return record

    def clean(self, job_id: str) -> None:
        """Cancel the job if it still runs, then delete its directory and its record."""
        record = self.find(job_id)
        if record is not None and not record.state.is_final:
            self.cancel(job_id)
        with self._lock:
            doomed = self.directory(job_id).retire()
            self.store.delete(self.name, job_id)
        if doomed.root != self.directory(job_id).root and self._staging is not None:
            # already out of the job's way: delete in the background, the answer need not wait
            self._staging.submit(doomed.delete)
        else:
            doomed.delete()
        log.info("job %s/%s: cleaned", self.name, job_id)

    # -- status -----------------------------------------------------------------------------

    def status(self, job_id: str) -> dict[str, Any]:
        """The status dictionary of the protocol (full completion details once finished)."""
        record = self.record(job_id)
        if self.backend.launch_inline and record.launch_state == LAUNCHED:
            record = self._look_in(record)
        return self.status_of(record)

    def status_of(self, record: JobRecord) -> dict[str, Any]:
        """The status dictionary of one record (short until the job is final)."""
        if not record.state.is_final:
            return {
                "complete": "false",
                "status": record.state.wire,
                "job_id": record.client_job_id,
            }
        details = completion(record, self.directory(record.job_id), self.maximum_stream_size)
        details["pulsar_version"] = self.pulsar_version
        return details

    # -- final states ---------------------------------------------------------------------

    def _settle(self, record: JobRecord, state: JobState, reason: str | None) -> None:
        """Move an unfinished job of the same attempt to a final state (no return-code logic)."""
        with self._lock:
            current = self.store.get(self.name, record.job_id)
            if current is None or current.attempt != record.attempt or current.state.is_final:
                return
            final = self.store.put(current.evolve(state=state, reason=reason))
        log.info(
            "job %s/%s: finished %s (return code %s)%s",
            self.name,
            record.job_id,
            state.value,
            final.return_code,
            f": {reason}" if reason else "",
        )
        self._notify(final)

    # -- helpers ----------------------------------------------------------------------------

    def _spec(self, record: JobRecord) -> LaunchSpec:
        directory = self.directory(record.job_id)
        launch = record.launch or {}
        params = launch.get("params") or {}
        if not isinstance(params, dict):
            params = {}
        return LaunchSpec(
            manager=self.name,
            job_id=record.job_id,
            attempt=record.attempt,
            job_directory=directory.root,
            working_directory=directory.sub("working"),
            script=directory.control(script.SCRIPT_NAME),
            native_specification=params.get("native_specification")
            or params.get("submit_native_specification"),
            user=params.get("user") or params.get("submit_user"),
            submit_params={str(k): str(v) for k, v in params.items()},
        )

    def _active(self, record: JobRecord) -> ActiveJob:
        return ActiveJob(self._spec(record), record.external_id or "")

    def _notify(self, record: JobRecord) -> None:
        for listener in list(self.listeners):
            try:
                listener(self, record)
            except Exception:
                log.exception("job %s/%s: status listener failed", self.name, record.job_id)
