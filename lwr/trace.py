"""Job traces: one time-stamped DEBUG line per step of a job's life, off unless asked for.

Where does a job's time go between the client's submit and its seeing ``complete``? The INFO job
log has millisecond time stamps and only some steps; this logger (``lwr.trace``) marks every step
the server takes for a job: each request about it arriving and answered, queued, handed to the
backend, its process started and seen ending, the final state recorded, the first status answer
saying ``complete``. The time is the wall clock in microseconds, so a client on the same machine
can put its own marks on the same time line (``python -m bench --trace`` does, and prints the
per-phase breakdown, see docs/benchmarks.md).

Turn it on with ``level = DEBUG`` in server.ini's ``[logger_trace]`` section. Off, a mark costs
one ``isEnabledFor`` check; the lines are parsed by :func:`parse`, so their format is fixed here.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

log = logging.getLogger("lwr.trace")

#: ``<unix time> <manager> <job id> <event>``; the event may contain spaces (a route)
_LINE = re.compile(r"\[lwr\.trace\].*?\] (\d+\.\d{6}) (\S+) (\S+) (.+)$")


def enabled() -> bool:
    """True when trace lines are written (callers skip any work a mark would need)."""
    return log.isEnabledFor(logging.DEBUG)


def mark(manager: str, job_id: str, event: str) -> None:
    """Record that ``event`` happened to job ``manager/job_id`` now."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%.6f %s %s %s", time.time(), manager, job_id, event)


@dataclass(frozen=True)
class Mark:
    """One parsed trace line."""

    at: float
    manager: str
    job_id: str
    event: str


def parse(lines: Iterable[str]) -> Iterator[Mark]:
    """The trace marks among a server log's lines (other lines are skipped)."""
    for line in lines:
        found = _LINE.search(line)
        if found is not None:
            at, manager, job_id, event = found.groups()
            yield Mark(float(at), manager, job_id, event)
