"""HTCondor user-log and condor_submit parsers on hand-written samples (tests/data/condor/)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lwr.managers.base import JobState
from lwr.managers.condor_log import (
    EVENT_TABLE,
    job_status,
    parse_events,
    parse_submit_output,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "condor"


def status_of(name: str, cluster: str):
    return job_status(parse_events((DATA / name).read_text()), cluster)


def test_submit_output_gives_the_cluster() -> None:
    assert parse_submit_output((DATA / "submit_output.txt").read_text()) == "1234"
    with pytest.raises(ValueError, match="no cluster id"):
        parse_submit_output("ERROR: Failed to connect to local queue manager\n")


def test_events_are_split_with_their_details() -> None:
    events = parse_events((DATA / "complete.log").read_text())
    assert [e.code for e in events] == [0, 1, 6, 5]
    assert events[0].cluster == "1234" and events[0].timestamp == "2024-05-02 10:15:01"
    assert "Normal termination (return value 0)" in events[-1].detail


@pytest.mark.parametrize(
    ("name", "cluster", "state", "native"),
    [
        ("complete.log", "1234", JobState.COMPLETE, "job_terminated (return value 0)"),
        ("nonzero_old_dates.log", "077", JobState.COMPLETE, "job_terminated (return value 3)"),
        ("held.log", "1300", JobState.FAILED, "job_held"),
        ("aborted.log", "1301", JobState.FAILED, "job_aborted"),
        ("signal.log", "1302", JobState.FAILED, "job_terminated (signal 9)"),
        ("evicted_held_released.log", "1303", JobState.RUNNING, "execute"),
        ("truncated.log", "1304", JobState.COMPLETE, "job_terminated (return value 0)"),
    ],
)
def test_samples_fold_into_one_status(
    name: str, cluster: str, state: JobState, native: str
) -> None:
    status = status_of(name, cluster)
    assert (status.state, status.native_state) == (state, native)
    if state is JobState.FAILED:
        assert status.reason


def test_hold_reason_reaches_the_operator() -> None:
    reason = status_of("held.log", "1300").reason or ""
    assert "Permission denied" in reason and "Code 6 Subcode 13" in reason


def test_other_clusters_and_empty_logs_mean_queued() -> None:
    assert status_of("complete.log", "9999").state is JobState.QUEUED
    assert job_status([], "1").native_state == "no events yet"


def test_unknown_event_code_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    text = (
        "000 (5.000.000) 2024-05-02 10:00:00 Job submitted from host: <h>\n...\n"
        "099 (5.000.000) 2024-05-02 10:00:01 Something new\n...\n"
    )
    with caplog.at_level(logging.WARNING):
        status = job_status(parse_events(text), "5")
    assert status.state is JobState.QUEUED and "099" in caplog.text


def test_every_documented_event_code_is_in_the_table() -> None:
    assert set(EVENT_TABLE) == set(range(46))
