"""lwr.trace: marks are written only when its logger is at DEBUG, and read back by parse()."""

from __future__ import annotations

import logging

import pytest

from lwr import trace

FORMAT = "%(asctime)s %(levelname)-5.5s [%(name)s][%(threadName)s] %(message)s"


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = logging.Formatter(FORMAT)
    return [formatter.format(r) for r in caplog.records if r.name == "lwr.trace"]


def test_a_mark_is_a_line_parse_reads_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="lwr.trace"):
        assert trace.enabled()
        trace.mark("_default_", "job-1", "in GET /jobs/{job_id}/status")
        trace.mark("_default_", "job-1", "process ended")
    marks = list(trace.parse(["an unrelated line", *_lines(caplog)]))
    assert [(m.manager, m.job_id, m.event) for m in marks] == [
        ("_default_", "job-1", "in GET /jobs/{job_id}/status"),
        ("_default_", "job-1", "process ended"),
    ]
    assert 0 <= marks[1].at - marks[0].at < 60


def test_no_line_unless_the_trace_logger_is_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="lwr.trace"):
        assert not trace.enabled()
        trace.mark("_default_", "job-1", "queued")
    assert _lines(caplog) == []
