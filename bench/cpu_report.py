"""The CPU rows of the report and the paragraph on what the targets ask in CPU per job.

Per server (LWR, Pulsar, and the floor of :mod:`bench.floor`, which does almost nothing): the
CPU milliseconds one job costs the client's process, the server's processes and the processes
the server forks and reaps (the job's own), measured by :mod:`bench.cpu` around the throughput
rounds and the latency jobs. :func:`budgets` applies :func:`bench.cpu.budget` and
:func:`bench.cpu.latency_budget` to them: whether 3x Pulsar's throughput fits the machine's
cores and 5x Pulsar's latency a lone job's CPU, for each server and for the floor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench import cpu

if TYPE_CHECKING:
    from bench.report import Row

#: (label, key of bench.cpu.per_job): the CPU rows, in order
_PARTS = (
    ("client (pulsar.client's process)", "client_ms"),
    ("server's own processes", "server_ms"),
    ("server's children (job processes)", "children_ms"),
    ("all", "total_ms"),
)


def _cpu(doc: dict[str, Any], name: str, workload: str) -> dict[str, float]:
    found = ((doc.get("results") or {}).get(name) or {}).get(workload) or {}
    return dict(found.get("cpu") or {})


def budgets(doc: dict[str, Any]) -> dict[str, Any]:
    """The throughput and latency budgets of a run's document ({} for what was not measured)."""
    out: dict[str, Any] = {}
    cores = int((doc.get("meta") or {}).get("machine", {}).get("nproc") or 0) or 2
    rate = ((doc["results"].get("pulsar") or {}).get("throughput") or {}).get("jobs_per_s")
    servers = {n: _cpu(doc, n, "throughput") for n in ("lwr", "pulsar", "floor")}
    if rate and any(servers.values()):
        out["throughput"] = cpu.budget({n: c for n, c in servers.items() if c}, rate, cores)
    pulsar_ms = ((doc["results"].get("pulsar") or {}).get("latency") or {}).get("median_ms")
    lone = {n: _cpu(doc, n, "latency") for n in ("lwr", "pulsar", "floor")}
    if pulsar_ms:
        out["latency"] = {
            name: cpu.latency_budget(found, pulsar_ms) for name, found in lone.items() if found
        }
    return out


def rows(doc: dict[str, Any]) -> list[Row]:
    """CPU ms per job, LWR against Pulsar, then the floor's (in the LWR column) against Pulsar."""
    from bench.report import Row

    out = []
    for workload, what in (("throughput", "throughput job"), ("latency", "lone latency job")):
        lwr, pulsar = _cpu(doc, "lwr", workload), _cpu(doc, "pulsar", workload)
        floor = _cpu(doc, "floor", workload)
        if not (lwr or pulsar):
            continue
        for label, key in _PARTS:
            mine, theirs = lwr.get(key), pulsar.get(key)
            advantage = round(theirs / mine, 2) if mine and theirs else None
            metric = f"CPU per {what}: {label}"
            out.append(Row(metric, "ms", mine, theirs, advantage, "", None))
        if floor.get("total_ms"):
            mine, theirs = floor["total_ms"], pulsar.get("total_ms")
            advantage = round(theirs / mine, 2) if mine and theirs else None
            metric = f"CPU per {what}, the floor server's (LWR column): all"
            out.append(Row(metric, "ms", mine, theirs, advantage, "", None))
    return out


def text(doc: dict[str, Any]) -> str:
    """What 3x throughput and 5x latency ask in CPU per job, against what each server spends."""
    found = budgets(doc)
    lines = []
    tp = found.get("throughput")
    if tp:
        lines.append(
            f"throughput: {tp['target_x']:g}x Pulsar is {tp['target_jobs_per_s']:g} jobs/s; on "
            f"{tp['cores']} cores that leaves {tp['budget_ms']:g} ms of CPU per job for client, "
            "server and the job's processes together"
        )
        for name, entry in tp["servers"].items():
            lines.append(
                f"  {name}: client + job processes {entry['client_and_jobs_ms']:g} ms, leaving "
                f"{entry['left_for_server_ms']:g} ms for a server that spends "
                f"{entry['server_ms']:g}; CPU-bound at {entry['cpu_bound_jobs_per_s']:g} jobs/s "
                f"(one core: client {entry['client_bound_jobs_per_s']}, server "
                f"{entry['server_bound_jobs_per_s']} jobs/s); "
                + ("fits" if entry["reachable"] else "does not fit")
            )
    for name, entry in (found.get("latency") or {}).items():
        lines.append(
            f"latency, {name}: {entry['target_x']:g}x Pulsar needs {entry['target_ms']:g} ms; a "
            f"lone job costs {entry['cpu_ms']:g} ms of CPU, leaving {entry['left_for_waits_ms']:g}"
            " ms for every wait (loopback, fork, poll)"
        )
    return "\n".join(lines)
