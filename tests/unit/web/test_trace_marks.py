"""A job through the in-process application marks every step in lwr.trace, in order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from lwr import trace
from tests.unit.web.dispatch_support import AppFactory

STEPS = (
    "in POST /jobs",
    "out POST /jobs",
    "queued",
    "dispatched",
    "process started",
    "process ended",
    "recorded complete",
    "answered complete",
    "in DELETE /jobs/{job_id}",
)


def test_a_traced_job_marks_each_step_in_order(
    make_client: AppFactory,
    wait_for: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client()
    with caplog.at_level(logging.DEBUG, logger="lwr.trace"):
        client.setup("traced")
        assert client.submit("traced", "true").status_int == 200
        client.final("traced", wait_for)
        assert client("DELETE", "/jobs/traced").status_int == 200
    lines = [f"[lwr.trace][t] {r.getMessage()}" for r in caplog.records if r.name == "lwr.trace"]
    first: dict[str, float] = {}
    for mark in trace.parse(lines):
        assert mark.job_id == "traced"
        first.setdefault(mark.event, mark.at)
    assert set(STEPS) <= set(first), sorted(first)
    times = [first[step] for step in STEPS]
    assert times == sorted(times)
