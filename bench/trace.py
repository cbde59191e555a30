"""Where each job's time goes: the client's marks joined with LWR's trace, phase by phase.

The client (:meth:`bench.client.Driver.copy_job`) records the wall-clock time each protocol step
ended; LWR, with its ``lwr.trace`` logger at DEBUG (``python -m bench --trace``), writes a line per
server-side step (:mod:`lwr.trace`). Both run on this machine, so the marks share one time line
and a job's life splits into consecutive phases that add up to its whole time. Pulsar has no
trace: its jobs split into the client's steps only.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.measure import percentile
from lwr import trace

#: (phase, from mark, to mark); a ``c:`` mark is the client's, any other the server's
TRACED_PHASES = (
    ("setup", "c:start", "c:setup"),
    ("upload", "c:setup", "c:upload"),
    ("submit -> queued", "c:upload", "queued"),
    ("queued -> dispatched", "queued", "dispatched"),
    ("dispatched -> process started", "dispatched", "process started"),
    ("process run", "process started", "process ended"),
    ("process ended -> recorded complete", "process ended", "recorded complete"),
    ("recorded -> status answered complete", "recorded complete", "answered complete"),
    ("answered -> client sees complete", "answered complete", "c:run+poll"),
    ("download", "c:run+poll", "c:download"),
    ("clean", "c:download", "c:clean"),
)
#: the same job seen from the client alone (Pulsar, or LWR without its trace)
CLIENT_PHASES = (
    ("setup", "c:start", "c:setup"),
    ("upload", "c:setup", "c:upload"),
    ("submit", "c:upload", "c:submit"),
    ("run + poll", "c:submit", "c:run+poll"),
    ("download", "c:run+poll", "c:download"),
    ("clean", "c:download", "c:clean"),
)


def server_marks(log: Path, job_ids: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
    """The first time of each trace event per job id, from a server log."""
    wanted = None if job_ids is None else set(job_ids)
    marks: dict[str, dict[str, float]] = {}
    with open(log, errors="replace") as lines:
        for found in trace.parse(lines):
            if wanted is None or found.job_id in wanted:
                marks.setdefault(found.job_id, {}).setdefault(found.event, found.at)
    return marks


def job_phases(
    client: Mapping[str, float], server: Mapping[str, float] | None
) -> dict[str, float] | None:
    """Seconds of each phase of one job, or None if a mark is missing (a failed job)."""
    joined = {f"c:{name}": at for name, at in client.items()}
    phases = CLIENT_PHASES
    if server:
        joined.update(server)
        phases = TRACED_PHASES
    out = {}
    for phase, start, end in phases:
        if start not in joined or end not in joined:
            return None
        out[phase] = joined[end] - joined[start]
    return out


def breakdown(
    client: Mapping[str, Mapping[str, float]],
    server: Mapping[str, Mapping[str, float]] | None = None,
    slowest: int = 5,
) -> dict[str, Any]:
    """Median, p90 and max ms of every phase over the jobs, each phase's share of the total,
    the ``slowest`` jobs with their largest phase, and the slot-freed-to-dispatch delays."""
    per_job = {}
    for job_id, marks in client.items():
        phases = job_phases(marks, (server or {}).get(job_id))
        if phases is not None:
            per_job[job_id] = phases
    if not per_job:
        return {"jobs": 0}
    names = list(next(iter(per_job.values())))
    total = sum(sum(p.values()) for p in per_job.values()) or 1.0
    table = {}
    for name in names:
        values = sorted(p[name] for p in per_job.values())
        table[name] = {
            "median_ms": _ms(statistics.median(values)),
            "p90_ms": _ms(percentile(values, 0.9)),
            "max_ms": _ms(values[-1]),
            "share": round(sum(values) / total, 3),
        }
    ranked = sorted(per_job.items(), key=lambda item: -sum(item[1].values()))[:slowest]
    out: dict[str, Any] = {
        "jobs": len(per_job),
        "phases": table,
        "slowest": [
            {
                "job_id": job_id,
                "total_ms": _ms(sum(phases.values())),
                "largest": max(phases, key=lambda n: phases[n]),
                "largest_ms": _ms(max(phases.values())),
            }
            for job_id, phases in ranked
        ],
    }
    if server:
        out["slot_freed_to_dispatch"] = dispatch_delays(server)
        out["server_ms_per_request"] = request_times(server)
    return out


def request_times(server: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Median ms from a request's ``in`` mark to its ``out`` mark, per route: the server's own
    share of each step the client times (the first request of each route per job)."""
    spans: dict[str, list[float]] = {}
    for marks in server.values():
        for event, at in marks.items():
            if event.startswith("in ") and f"out {event[3:]}" in marks:
                spans.setdefault(event[3:], []).append(marks[f"out {event[3:]}"] - at)
    return {route: _ms(statistics.median(values)) for route, values in sorted(spans.items())}


def dispatch_delays(server: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """How long a queued job waited after a slot could have taken it.

    For each dispatch: the time since the later of the job's own ``queued`` mark and the last
    ``recorded <final state>`` mark of any job before the dispatch (a slot freed). An event-driven
    manager dispatches within milliseconds; one waiting for its timer shows the timer here.
    """
    freed = sorted(
        at
        for marks in server.values()
        for event, at in marks.items()
        if event.startswith("recorded")
    )
    delays = []
    for marks in server.values():
        if "dispatched" not in marks or "queued" not in marks:
            continue
        dispatched = marks["dispatched"]
        before = [at for at in freed if at <= dispatched]
        since = max(marks["queued"], before[-1] if before else marks["queued"])
        delays.append(dispatched - since)
    if not delays:
        return {"n": 0}
    delays.sort()
    return {
        "n": len(delays),
        "median_ms": _ms(statistics.median(delays)),
        "max_ms": _ms(delays[-1]),
        "over_100ms": sum(1 for d in delays if d > 0.1),
    }


def render(title: str, result: Mapping[str, Any]) -> str:
    """A text table of one breakdown, for the console."""
    if not result.get("jobs"):
        return f"{title}: no complete job to break down"
    lines = [f"{title} ({result['jobs']} jobs)"]
    lines.append(f"  {'phase':40} {'median ms':>10} {'p90 ms':>9} {'max ms':>9} {'share':>6}")
    for name, row in result["phases"].items():
        lines.append(
            f"  {name:40} {row['median_ms']:>10} {row['p90_ms']:>9} {row['max_ms']:>9} "
            f"{row['share']:>6.1%}"
        )
    delays = result.get("slot_freed_to_dispatch")
    if delays and delays.get("n"):
        lines.append(
            f"  slot freed -> next dispatch: median {delays['median_ms']} ms, max "
            f"{delays['max_ms']} ms, {delays['over_100ms']} of {delays['n']} over 100 ms"
        )
    routes = result.get("server_ms_per_request")
    if routes:
        shown = ", ".join(f"{route} {ms}" for route, ms in routes.items())
        lines.append(f"  server ms per request (median, in to out): {shown}")
    slow = ", ".join(
        f"{j['job_id']} {j['total_ms']} ms ({j['largest']} {j['largest_ms']})"
        for j in result["slowest"]
    )
    lines.append(f"  slowest: {slow}")
    return "\n".join(lines)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
