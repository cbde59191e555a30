"""The TES state mapping: every job state, both outcomes of a finished one."""

from __future__ import annotations

import pytest

from lwr.managers.base import JobState
from lwr.tes.states import TES_STATES, job_states, tes_state


@pytest.mark.parametrize(
    ("state", "return_code", "expected"),
    [
        (JobState.SETUP, None, "QUEUED"),
        (JobState.PREPROCESSING, None, "INITIALIZING"),
        (JobState.QUEUED, None, "QUEUED"),
        (JobState.RUNNING, None, "RUNNING"),
        (JobState.POSTPROCESSING, 0, "RUNNING"),
        (JobState.COMPLETE, 0, "COMPLETE"),
        (JobState.COMPLETE, 1, "EXECUTOR_ERROR"),
        (JobState.COMPLETE, 137, "EXECUTOR_ERROR"),
        (JobState.COMPLETE, None, "EXECUTOR_ERROR"),
        (JobState.FAILED, None, "SYSTEM_ERROR"),
        (JobState.LOST, None, "SYSTEM_ERROR"),
        (JobState.CANCELLED, None, "CANCELED"),
        (JobState.CANCELLED, 0, "CANCELED"),
    ],
)
def test_each_job_state(state: JobState, return_code: int | None, expected: str) -> None:
    assert tes_state(state, return_code) == expected


def test_every_job_state_is_mapped_to_a_tes_state_and_paused_never() -> None:
    seen = {tes_state(state, code) for state in JobState for code in (0, 1, None)}
    assert seen <= set(TES_STATES) and "UNKNOWN" not in seen
    assert not seen & {"PAUSED", "PREEMPTED", "CANCELING"}


def test_job_states_of_a_tes_state() -> None:
    assert set(job_states("SYSTEM_ERROR")) == {JobState.FAILED, JobState.LOST}
    assert set(job_states("RUNNING")) == {JobState.RUNNING, JobState.POSTPROCESSING}
    assert job_states("PAUSED") == ()
