"""The pool's wire format: what one side encodes the other decodes, and nothing malformed passes."""

from __future__ import annotations

import pytest

from lwr.errors import InvalidRequestError
from lwr.pool.protocol import DrainCommand, LoadReport, control_key, load_key


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
