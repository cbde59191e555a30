"""Server-side staging around a job's run: fetch inputs before it is queued, send outputs after.

Split from :mod:`lwr.managers.stateful` to keep each module readable; :class:`ServerStaging` is
only ever a base of :class:`~lwr.managers.stateful.StatefulManager`, whose attributes it declares
below. Staging runs on the manager's staging thread pool, never on the monitor thread or in a
request, because a transfer may take minutes; a failure ends the job ``failed`` with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from lwr.errors import LwrError
from lwr.managers.base import JobState
from lwr.managers.directory import JobDirectory
from lwr.managers.status import completion
from lwr.persistence.store import JobRecord, JobStore

if TYPE_CHECKING:
    from lwr.managers.admission import Admission

log = logging.getLogger(__name__)


class Stager(Protocol):
    """Server-side file staging (``remote_transfer``/``remote_copy``) around a job's run.

    ``stage_in`` runs before the job is queued (state ``preprocessing``), ``stage_out`` after its
    return code is recorded (state ``postprocessing``). Both must be idempotent — after a restart
    they are simply run again — and raise :class:`~lwr.errors.StagingError` naming the file that
    failed and why; the job then ends ``failed`` with that reason.
    """

    def needs_stage_in(self, launch: Mapping[str, Any]) -> bool: ...

    def stage_in(self, launch: Mapping[str, Any], directory: JobDirectory) -> None: ...

    def needs_stage_out(self, launch: Mapping[str, Any]) -> bool: ...

    def stage_out(
        self, launch: Mapping[str, Any], directory: JobDirectory, status: Mapping[str, Any]
    ) -> None: ...


class ServerStaging:
    """Stage-in and stage-out of one manager's jobs; see the module docstring."""

    name: str
    store: JobStore
    stager: Stager | None
    admission: Admission
    maximum_stream_size: int
    _staging: ThreadPoolExecutor | None
    _lock: threading.RLock
    _wakeup: threading.Event

    def directory(self, job_id: str) -> JobDirectory:
        raise NotImplementedError

    def _settle(self, record: JobRecord, state: JobState, reason: str | None) -> None:
        raise NotImplementedError

    def _notify(self, record: JobRecord) -> None:
        raise NotImplementedError

    def _in_background(self, function: Callable[[JobRecord], None], record: JobRecord) -> None:
        assert self._staging is not None, "start() the manager before submitting"
        self._staging.submit(function, record)

    def _stage_in(self, record: JobRecord) -> None:
        """Fetch the job's inputs on the server side, then queue it (unless cancelled meanwhile)."""
        assert self.stager is not None
        try:
            self.stager.stage_in(record.launch or {}, self.directory(record.job_id))
        except Exception as exc:
            log.warning("job %s/%s: staging inputs failed: %s", self.name, record.job_id, exc)
            self._settle(record, JobState.FAILED, f"staging inputs failed: {_message(exc)}")
            return
        try:  # files staged by the server went through no upload check
            staged = self.directory(record.job_id)
            self.admission.check_staged(record, staged)
        except LwrError as exc:
            log.warning("job %s/%s: %s", self.name, record.job_id, exc.message)
            self._settle(record, JobState.FAILED, exc.message)
            return
        with self._lock:
            current = self.store.get(self.name, record.job_id)
            if current is None or current.attempt != record.attempt:
                return
            if current.state is not JobState.PREPROCESSING:
                return
            queued = self.store.put(current.evolve(state=JobState.QUEUED))
        log.info("job %s/%s: inputs staged; queued", self.name, record.job_id)
        self._notify(queued)
        self._wakeup.set()

    def _stage_out(self, record: JobRecord) -> None:
        """Send the job's outputs back on the server side, then report it complete."""
        assert self.stager is not None
        directory = self.directory(record.job_id)
        try:
            details = completion(record, directory, self.maximum_stream_size)
            self.stager.stage_out(record.launch or {}, directory, details)
        except Exception as exc:
            log.warning("job %s/%s: staging outputs failed: %s", self.name, record.job_id, exc)
            self._settle(record, JobState.FAILED, f"staging outputs failed: {_message(exc)}")
            return
        self._settle(record, JobState.COMPLETE, None)


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, LwrError) else f"{type(exc).__name__}: {exc}"
