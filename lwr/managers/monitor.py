"""The monitor half of a stateful manager: hand queued jobs to the backend, follow them, finish.

Split from :mod:`lwr.managers.stateful` to keep each module readable; :class:`Monitor` is only
ever used as the base of :class:`~lwr.managers.stateful.StatefulManager`, whose attributes it
declares below. One monitor thread per manager runs :meth:`Monitor._monitor`; it wakes on a
timer (the backend's ``poll_interval``) and whenever a submit or the backend says something
changed. The timer is only a safety net: a pass that sees jobs end dispatches queued ones into
the freed slots at once, and a launch looks at its job once after recording it, in case the job
ended (and spent its wake-up) before the record was written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lwr import trace
from lwr.errors import LwrError
from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec, Manager
from lwr.persistence.store import LAUNCHED, LAUNCHING, PENDING, JobRecord, JobStore

if TYPE_CHECKING:
    from lwr.managers.directory import JobDirectory
    from lwr.managers.server_staging import Stager

log = logging.getLogger(__name__)

ACTIVE = (JobState.QUEUED, JobState.RUNNING)


class Monitor:
    """Dispatch, polling and completion; see the module docstring."""

    name: str
    backend: Manager
    store: JobStore
    stager: Stager | None
    _lock: threading.RLock
    _wakeup: threading.Event
    _stopping: threading.Event
    retention: float
    _next_expiry: float = 0.0
    #: a service user's plan limit of jobs running at once (lwr.service), None: no users
    running_limit: Callable[[str], int | None] | None = None

    def directory(self, job_id: str) -> JobDirectory:
        raise NotImplementedError

    def _spec(self, record: JobRecord) -> LaunchSpec:
        raise NotImplementedError

    def _active(self, record: JobRecord) -> ActiveJob:
        raise NotImplementedError

    def _notify(self, record: JobRecord) -> None:
        raise NotImplementedError

    def _in_background(self, function: Any, record: JobRecord) -> None:
        raise NotImplementedError

    def _stage_out(self, record: JobRecord) -> None:
        raise NotImplementedError

    def _monitor(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.wait(self.backend.poll_interval)
            self._wakeup.clear()
            if self._stopping.is_set():
                break
            try:
                self._dispatch()
                if self._poll():  # jobs ended: start queued ones in their slots now
                    self._dispatch()
                self._expire()
            except Exception:
                log.exception("manager %s: monitor pass failed; retrying", self.name)
                time.sleep(min(5.0, self.backend.poll_interval))

    def _expire(self) -> None:
        """Delete finished jobs older than the retention time (at most once a minute)."""
        if self.retention <= 0 or time.monotonic() < self._next_expiry:
            return
        self._next_expiry = time.monotonic() + 60.0
        for record in self.store.finished_before(self.name, time.time() - self.retention):
            log.info(
                "job %s/%s: %s for longer than finished_job_retention; deleting it",
                self.name,
                record.job_id,
                record.state.value,
            )
            self.clean(record.job_id)

    def clean(self, job_id: str) -> None:
        raise NotImplementedError

    def _dispatch(self) -> None:
        """Hand queued jobs to the backend while it has capacity, oldest first.

        After a launch the queue is read again only if another job was waiting and a slot is
        left: a job queued later is dispatched by its own submit (or the monitor's pass after
        a job ends), so a lone submit costs one read of the queue, not two.
        """
        limit = self.backend.max_concurrent_jobs
        while not self._stopping.is_set():
            with self._lock:
                queued = self.store.in_states(self.name, ACTIVE)
                launched = sum(1 for r in queued if r.launch_state != PENDING)
                waiting = [r for r in queued if r.launch_state == PENDING]
                if not waiting or (limit is not None and launched >= limit):
                    return
                chosen = self._next_allowed(waiting)
                if chosen is None:
                    return
                record = self.store.put(chosen.evolve(launch_state=LAUNCHING))
            trace.mark(self.name, record.job_id, "dispatched")
            self._launch(record)
            if len(waiting) == 1 or (limit is not None and launched + 1 >= limit):
                return

    def _next_allowed(self, waiting: list[JobRecord]) -> JobRecord | None:
        """The oldest waiting job whose owner is under their plan's running limit.

        Jobs over the limit are not refused: they wait, and jobs of others pass them. The count
        spans every manager (the store's, not this manager's), so a plan limits a user, not a
        user per manager.
        """
        if self.running_limit is None:
            return waiting[0]
        counts: dict[str, int] = {}
        for record in waiting:
            owner = record.owner
            limit = self.running_limit(owner) if owner is not None else None
            if owner is None or limit is None:
                return record
            if owner not in counts:
                counts[owner] = self.store.launched_count(owner)
            if counts[owner] < limit:
                return record
        return None

    def _launch(self, record: JobRecord) -> None:
        spec = self._spec(record)
        try:
            external_id = self.backend.launch(spec)
        except LwrError as exc:
            self._finish(record, JobState.FAILED, reason=f"launch failed: {exc}")
            return
        except Exception as exc:
            log.exception("job %s/%s: launch raised", self.name, record.job_id)
            self._finish(record, JobState.FAILED, reason=f"launch failed: {exc}")
            return
        with self._lock:
            current = self.store.get(self.name, record.job_id)
            if current is None or current.attempt != record.attempt or current.state.is_final:
                log.info(
                    "job %s/%s: cancelled while launching; stopping it", self.name, record.job_id
                )
                self.backend.cancel(ActiveJob(spec, external_id))
                return
            changes: dict[str, Any] = {"launch_state": LAUNCHED, "external_id": external_id}
            if self.backend.starts_immediately:
                changes["state"] = JobState.RUNNING
            record = self.store.put(current.evolve(**changes))
        trace.mark(self.name, record.job_id, "launched")
        log.info("job %s/%s: started as %s", self.name, record.job_id, external_id)
        if self.backend.starts_immediately:
            # one write instead of launched-then-running
            self._notify(record)
        # A short job may already have ended, and the monitor pass its end woke may have run
        # before the record above said "launched" and skipped it: without this look, its end
        # would wait for the next timer pass (issue 14's throughput stall).
        try:
            self._poll_one(record)
        except LwrError as exc:  # the next monitor pass polls it again
            log.warning("job %s/%s: first poll failed: %s", self.name, record.job_id, exc)

    def _poll(self) -> bool:
        """Poll the launched jobs; True when any of them reached a final state (slots freed)."""
        active = [r for r in self.store.in_states(self.name, ACTIVE) if r.launch_state == LAUNCHED]
        if not active:
            return False
        jobs = [self._active(r) for r in active]
        statuses = self.backend.poll(jobs)
        ended = False
        for record in active:
            status = statuses.get(record.external_id or "")
            if status is None:
                log.warning(
                    "job %s/%s: backend gave no status for %s",
                    self.name,
                    record.job_id,
                    record.external_id,
                )
                continue
            self._apply(record, status)
            ended = ended or status.state.is_final
        return ended

    def _look_in(self, record: JobRecord) -> JobRecord:
        """A status request's own look at a launched local job; the record it should answer.

        The end of a local job is noticed by the reaper's thread and recorded by the monitor's,
        two hand-offs that each wait for a core on a loaded machine while the client keeps
        polling. Asking the backend here (a ``waitpid`` for a local child) lets the first status
        request after the process ended record it; the monitor's own record of the same end then
        finds the job final and writes nothing. Only for ``launch_inline`` backends, whose poll
        costs no external command.
        """
        if record.state not in ACTIVE:
            return record
        try:
            status = self._poll_one(record)
        except Exception as exc:  # the answer stands without this look; the monitor polls again
            log.warning("job %s/%s: status poll failed: %s", self.name, record.job_id, exc)
            return record
        if status is None or _unchanged(record, status):
            return record  # nothing was written: the record just read is the answer
        current = self.store.get(self.name, record.job_id)
        if current is None:
            return record
        if current.state.is_final:
            self._wakeup.set()  # a slot is free: the monitor dispatches queued jobs into it
        return current

    def _poll_one(self, record: JobRecord) -> ExternalStatus | None:
        """Poll one launched job and apply what the backend says; that status (None: none)."""
        status = self.backend.poll([self._active(record)]).get(record.external_id or "")
        if status is not None:
            self._apply(record, status)
        return status

    def _apply(self, record: JobRecord, status: ExternalStatus) -> None:
        """Turn one backend status into a persisted state change."""
        if status.state.is_final:
            self._finish(record, status.state, status.reason, status.native_state)
            return
        if status.state != record.state or status.native_state != record.native_state:
            with self._lock:
                current = self.store.get(self.name, record.job_id)
                if current is None or current.attempt != record.attempt or current.state.is_final:
                    return
                updated = self.store.put(
                    current.evolve(state=status.state, native_state=status.native_state)
                )
            if status.state != record.state:
                log.info("job %s/%s: %s", self.name, record.job_id, status.state.value)
                self._notify(updated)

    def _finish(
        self,
        record: JobRecord,
        state: JobState,
        reason: str | None = None,
        native: str | None = None,
    ) -> None:
        """Record a final state; the return code recorded by the job script decides completion."""
        directory = self.directory(record.job_id)
        return_code = directory.return_code()
        if return_code is not None and state is not JobState.CANCELLED:
            state, reason = JobState.COMPLETE, None
        elif state is JobState.COMPLETE:
            state = JobState.LOST
            reason = reason or "the job ended without recording a return code"
        launch = record.launch or {}
        stage_out = (
            state is JobState.COMPLETE
            and self.stager is not None
            and self.stager.needs_stage_out(launch)
        )
        with self._lock:
            current = self.store.get(self.name, record.job_id)
            if current is None or current.attempt != record.attempt or current.state.is_final:
                return
            final = self.store.put(
                current.evolve(
                    state=JobState.POSTPROCESSING if stage_out else state,
                    reason=reason,
                    return_code=return_code,
                    native_state=native or current.native_state,
                )
            )
        trace.mark(self.name, record.job_id, f"recorded {final.state.value}")
        if stage_out:
            log.info("job %s/%s: postprocessing (staging outputs)", self.name, record.job_id)
            self._notify(final)
            self._in_background(self._stage_out, final)
            return
        log.info(
            "job %s/%s: finished %s (return code %s)%s",
            self.name,
            record.job_id,
            state.value,
            return_code,
            f": {reason}" if reason else "",
        )
        self._notify(final)


def _unchanged(record: JobRecord, status: ExternalStatus) -> bool:
    """Whether :meth:`Monitor._apply` of ``status`` to ``record`` writes nothing: the same
    unfinished state and native state (the common answer to a poll of a running job)."""
    return (
        not status.state.is_final
        and status.state == record.state
        and status.native_state == record.native_state
    )
