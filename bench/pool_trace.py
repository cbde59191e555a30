"""Where a pool job's time goes: the phases of each job from a pool worker's trace marks.

``python -m bench.pool --trace`` turns on the ``lwr.trace`` logger of every worker
(:mod:`lwr.trace`); each worker then marks, per job, the setup arriving, the job queued,
dispatched, its process (the supervisor) started and ended, the final state recorded, the final
status handed to the consumer thread, and the transaction of status and ack committed. The phases
below are the gaps between consecutive marks. One more number is not a phase of a job but of a
*slot*: the **delivery wait**, from a worker's commit of one job to the arrival of the next setup
it was given (with ``prefetch = slots`` a slot stays empty for that broker round trip). The
broker sends that setup before the commit's ``commit-ok``, and py-amqp runs its callback (submit
and launch) while the commit waits, so "final queued -> committed" holds the next setup's
handling too, and the delivery wait can come out short or empty; the gap from a job's "final
status queued" to the next "setup received" in a ``--keep`` log is the round trip itself.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.measure import percentile
from bench.trace import server_marks

#: (phase, from mark, to mark), in the order a pool job passes them
POOL_PHASES = (
    ("setup received -> queued", "setup received", "queued"),
    ("queued -> dispatched", "queued", "dispatched"),
    ("dispatched -> process started", "dispatched", "process started"),
    ("process run (supervisor + job)", "process started", "process ended"),
    ("process ended -> recorded", "process ended", "recorded complete"),
    ("recorded -> final queued", "recorded complete", "final status queued"),
    ("final queued -> committed", "final status queued", "final status committed"),
)


def job_phases(marks: Mapping[str, float]) -> dict[str, float] | None:
    """Seconds of each phase of one job; None when a mark is missing (a failed job)."""
    try:
        phases = {name: marks[end] - marks[start] for name, start, end in POOL_PHASES}
    except KeyError:
        return None
    phases["setup received -> committed"] = (
        marks["final status committed"] - marks["setup received"]
    )
    return phases


def delivery_waits(marks: Mapping[str, Mapping[str, float]]) -> list[float]:
    """Per setup of one worker: seconds since the commit that freed its slot.

    Each setup is paired with the earliest commit before it not yet paired (the slot freed
    first is filled first); the setups that came before any commit (the first ``slots`` of a
    burst) wait for no slot and are left out.
    """
    received = sorted(m["setup received"] for m in marks.values() if "setup received" in m)
    commits = sorted(m["final status committed"] for m in marks.values()
                     if "final status committed" in m)  # fmt: skip
    waits, used = [], 0
    for at in received:  # the slot freed first is filled first
        if used < len(commits) and commits[used] <= at:
            waits.append(at - commits[used])
            used += 1
    return waits


def summarise(values: Iterable[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(percentile(ordered, 0.9) * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
    }


def breakdown(logs: Iterable[Path], job_ids: Iterable[str]) -> dict[str, Any]:
    """The phases of the jobs ``job_ids`` over the worker logs ``logs``, summarised."""
    wanted = set(job_ids)
    per_phase: dict[str, list[float]] = {}
    waits: list[float] = []
    for log in logs:
        marks = server_marks(log, wanted)
        waits.extend(delivery_waits(marks))
        for job in marks.values():
            phases = job_phases(job)
            for name, seconds in (phases or {}).items():
                per_phase.setdefault(name, []).append(seconds)
    result = {name: summarise(values) for name, values in per_phase.items()}
    result["delivery wait (commit -> next setup)"] = summarise(waits)
    return result


def render(tag: str, phases: Mapping[str, Mapping[str, float]]) -> str:
    lines = [f"  {tag}: phase{'':<36} median     p90    mean (ms)"]
    for name, numbers in phases.items():
        if numbers:
            lines.append(
                f"    {name:<44} {numbers['median_ms']:>7} {numbers['p90_ms']:>7} "
                f"{numbers['mean_ms']:>7}"
            )
    return "\n".join(lines)
