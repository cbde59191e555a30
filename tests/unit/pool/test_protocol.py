"""The pool's wire format: what one side encodes the other decodes, and nothing malformed passes."""

from __future__ import annotations

import pytest

from lwr.errors import InvalidRequestError
from lwr.pool.protocol import (
    DrainCommand,
    JobRequest,
    LedgerEntry,
    LoadReport,
    control_key,
    job_key,
    job_pattern,
    load_key,
)


def _report(**changes: object) -> dict[str, object]:
    body = LoadReport(
        worker_id="w-1",
        manager="_default_",
        host="h",
        pid=10,
        slots=2,
        jobs_held=1,
        draining=False,
        jobs_received_total=5,
        jobs_finished_total=4,
        sent_at=1.5,
    ).to_body()
    body.update(changes)
    return body


def test_report_round_trip() -> None:
    report = LoadReport.from_body(_report())
    assert report.jobs_held == 1 and not report.idle and report.endpoint is None


@pytest.mark.parametrize(
    "changes",
    [
        {"worker_id": "a.b"},
        {"worker_id": "*"},
        {"jobs_held": -1},
        {"slots": True},
        {"draining": "no"},
        {"sent_at": float("nan")},
        {"version": 99},
        {"unexpected": 1},
        {"host": 5},
    ],
)
def test_malformed_reports_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        LoadReport.from_body(_report(**changes))


def test_report_must_be_an_object() -> None:
    with pytest.raises(InvalidRequestError):
        LoadReport.from_body([1])


def test_drain_command_round_trip_and_checks() -> None:
    assert DrainCommand.from_body(DrainCommand("w", 3.0).to_body()).timeout == 3.0
    assert DrainCommand.from_body(DrainCommand("w").to_body()).timeout is None
    for bad in ({"timeout": -1}, {"timeout": True}, {"command": "stop"}, {"worker_id": "a b"}):
        with pytest.raises(InvalidRequestError):
            DrainCommand.from_body({**DrainCommand("w").to_body(), **bad})


def test_routing_keys() -> None:
    assert load_key("pulsar_") == "pulsar_.load"
    assert control_key("pulsar_", "w-1") == "pulsar_.control.w-1"
    with pytest.raises(InvalidRequestError):
        control_key("pulsar_", "w.1")


def test_job_requests_round_trip_and_route_under_the_pool_prefix() -> None:
    request = JobRequest("42", "kill", "w-1")
    assert JobRequest.from_body(request.to_body()) == request
    assert job_key("pulsar_", "status") == "pulsar_.job.status"
    assert job_pattern("pulsar_") == "pulsar_.job.*"


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"job_id": "1", "action": "kill", "origin": "w", "version": 99},
        {"job_id": "1", "action": "rm -rf", "origin": "w", "version": 1},
        {"job_id": 1, "action": "kill", "origin": "w", "version": 1},
        {"job_id": "1", "action": "kill", "version": 1},
        {"job_id": "1", "action": "kill", "origin": "w", "version": 1, "extra": 1},
    ],
)
def test_malformed_job_requests_are_refused(body: object) -> None:
    with pytest.raises(InvalidRequestError):
        JobRequest.from_body(body)


def test_an_unknown_job_action_has_no_routing_key() -> None:
    with pytest.raises(InvalidRequestError):
        job_key("pulsar_", "delete")


def test_ledger_entries_round_trip() -> None:
    kill = LedgerEntry("kill", "w-1", 1000.5, job_id="42")
    mark = LedgerEntry("mark", "w-2", 1001, token="abc")
    assert LedgerEntry.from_body(kill.to_body()) == kill
    assert LedgerEntry.from_body(mark.to_body()) == mark
    claim = LedgerEntry("claim", "w-3", 1002, job_id="42", token="t", uuid="u-1")
    done = LedgerEntry("done", "w-3", 1003, uuid="u-1")
    assert LedgerEntry.from_body(claim.to_body()) == claim
    assert LedgerEntry.from_body(done.to_body()) == done


def test_kills_and_marks_carry_no_uuid_key_for_older_workers() -> None:
    """A worker of the previous release refuses unknown keys: its kills must still reach it."""
    assert "uuid" not in LedgerEntry("kill", "w", 1.0, job_id="1").to_body()
    assert "uuid" not in LedgerEntry("mark", "w", 1.0, token="t").to_body()


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"kind": "kill", "origin": "w", "at": 1.0, "job_id": "1", "version": 99},
        {"kind": "erase", "origin": "w", "at": 1.0, "job_id": "1", "version": 1},
        {"kind": "kill", "origin": "w", "at": 1.0, "version": 1},  # a kill of no job
        {"kind": "kill", "origin": "w", "at": 1.0, "job_id": "", "version": 1},
        {"kind": "mark", "origin": "w", "at": 1.0, "job_id": "1", "version": 1},  # no token
        {"kind": "kill", "origin": "w", "at": "now", "job_id": "1", "version": 1},
        {"kind": "kill", "origin": "w", "at": True, "job_id": "1", "version": 1},
        {"kind": "kill", "origin": "w", "at": float("nan"), "job_id": "1", "version": 1},
        {"kind": "kill", "origin": 7, "at": 1.0, "job_id": "1", "version": 1},
        {"kind": "kill", "origin": "w", "at": 1.0, "job_id": "1", "version": 1, "x": 1},
        {"kind": "claim", "origin": "w", "at": 1.0, "job_id": "1", "token": "t", "version": 1},
        {"kind": "claim", "origin": "w", "at": 1.0, "uuid": "u", "token": "t", "version": 1},
        {"kind": "claim", "origin": "w", "at": 1.0, "job_id": "1", "uuid": "u", "version": 1},
        {"kind": "done", "origin": "w", "at": 1.0, "job_id": "1", "version": 1},  # no uuid
        {"kind": "done", "origin": "w", "at": 1.0, "uuid": 5, "version": 1},
    ],
)
def test_malformed_ledger_entries_are_refused(body: object) -> None:
    with pytest.raises(InvalidRequestError):
        LedgerEntry.from_body(body)
