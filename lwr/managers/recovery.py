"""The recovery half of a stateful manager: resume its unfinished jobs after a restart.

Split from :mod:`lwr.managers.stateful` to keep each module readable; :class:`Recovery` is only
ever used as a base of :class:`~lwr.managers.stateful.StatefulManager`, whose attributes it
declares below. It runs once, at start, before the monitor thread: queued jobs wait again,
launched ones are followed again, and a job caught between "launching" and "launched" is looked
for with the backend's ``find_orphan`` instead of being launched a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from lwr.managers.base import JobState, LaunchSpec, Manager
from lwr.managers.monitor import ACTIVE
from lwr.persistence.store import LAUNCHED, LAUNCHING, JobRecord, JobStore

if TYPE_CHECKING:
    from lwr.managers.directory import JobDirectory
    from lwr.managers.server_staging import Stager

log = logging.getLogger(__name__)

#: the states a restart must pick up again
_UNFINISHED = (JobState.SETUP, JobState.PREPROCESSING, *ACTIVE, JobState.POSTPROCESSING)


class Recovery:
    """Start-up recovery; see the module docstring."""

    name: str
    backend: Manager
    store: JobStore
    stager: Stager | None

    def directory(self, job_id: str) -> JobDirectory:
        raise NotImplementedError

    def _spec(self, record: JobRecord) -> LaunchSpec:
        raise NotImplementedError

    def _in_background(self, function: Callable[[JobRecord], None], record: JobRecord) -> None:
        raise NotImplementedError

    def _stage_in(self, record: JobRecord) -> None:
        raise NotImplementedError

    def _stage_out(self, record: JobRecord) -> None:
        raise NotImplementedError

    def _settle(self, record: JobRecord, state: JobState, reason: str | None) -> None:
        raise NotImplementedError

    def _finish(
        self,
        record: JobRecord,
        state: JobState,
        reason: str | None = None,
        native: str | None = None,
    ) -> None:
        raise NotImplementedError

    def _recover(self) -> None:
        """Resume after a restart: queued jobs wait again, launched ones are re-attached."""
        unfinished = self.store.in_states(self.name, _UNFINISHED)
        for record in unfinished:
            if record.launch_state == LAUNCHING:
                self._recover_launching(record)
            elif record.state is JobState.PREPROCESSING and self.stager is not None:
                self._in_background(self._stage_in, record)
            elif record.state is JobState.POSTPROCESSING and self.stager is not None:
                self._in_background(self._stage_out, record)
            elif record.state in (JobState.PREPROCESSING, JobState.POSTPROCESSING):
                self._settle(record, JobState.LOST, "the server stopped while staging files")
        counts: dict[str, int] = {}
        for record in unfinished:
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        if unfinished:
            log.info("manager %s: recovered %s", self.name, counts)

    def _recover_launching(self, record: JobRecord) -> None:
        spec = self._spec(record)
        external_id = self.backend.find_orphan(spec)
        if external_id:
            self.store.put(record.evolve(launch_state=LAUNCHED, external_id=external_id))
            log.info(
                "job %s/%s: re-attached to %s found after a crash",
                self.name,
                record.job_id,
                external_id,
            )
        elif self.directory(record.job_id).return_code() is not None:
            self._finish(record, JobState.COMPLETE)
        else:
            self._finish(
                record,
                JobState.LOST,
                "the server stopped while handing this job to its backend; it was not relaunched "
                "to avoid running it twice",
            )
