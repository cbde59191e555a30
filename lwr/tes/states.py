"""The TES state of a job: one pure function over the job life cycle.

============== ====================================================================
job state       TES state
============== ====================================================================
setup           QUEUED (the record exists; the submit that follows is immediate)
preprocessing   INITIALIZING (the server is fetching the task's inputs)
queued          QUEUED
running         RUNNING
postprocessing  RUNNING (outputs are being uploaded; TES has no state for it)
complete        COMPLETE when the executors' script exited 0, else EXECUTOR_ERROR
failed          SYSTEM_ERROR (staging or backend failure; the reason goes to system_logs)
lost            SYSTEM_ERROR (the job vanished or could not safely be relaunched)
cancelled       CANCELED
============== ====================================================================

``PAUSED`` and ``PREEMPTED`` are never reported: no LWR backend pauses a job, and a preempted
cluster job is seen as lost or failed. ``CANCELING`` is never reported either: a cancel returns
only once the backend has stopped the job, so the job goes straight to cancelled.
"""

from __future__ import annotations

from lwr.managers.base import JobState

#: every TES 1.1 state, in the order of the specification's enumeration
TES_STATES = (
    "UNKNOWN",
    "QUEUED",
    "INITIALIZING",
    "RUNNING",
    "PAUSED",
    "COMPLETE",
    "EXECUTOR_ERROR",
    "SYSTEM_ERROR",
    "CANCELED",
    "PREEMPTED",
    "CANCELING",
)

_BY_JOB_STATE = {
    JobState.SETUP: "QUEUED",
    JobState.PREPROCESSING: "INITIALIZING",
    JobState.QUEUED: "QUEUED",
    JobState.RUNNING: "RUNNING",
    JobState.POSTPROCESSING: "RUNNING",
    JobState.FAILED: "SYSTEM_ERROR",
    JobState.LOST: "SYSTEM_ERROR",
    JobState.CANCELLED: "CANCELED",
}


def tes_state(state: JobState, return_code: int | None) -> str:
    """The TES state of a job in ``state`` whose executors' script returned ``return_code``."""
    if state is JobState.COMPLETE:
        return "COMPLETE" if return_code == 0 else "EXECUTOR_ERROR"
    return _BY_JOB_STATE.get(state, "UNKNOWN")


def job_states(tes: str) -> tuple[JobState, ...]:
    """The job states that show as TES state ``tes`` (for ``GET /tasks?state=``)."""
    found = [s for s in JobState if tes_state(s, 0) == tes or tes_state(s, 1) == tes]
    return tuple(found)
