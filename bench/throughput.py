"""The throughput workload: alternating rounds of a burst of small jobs, and the same with both
servers given the same number of request threads (``--server-threads``).

Default against default compares what users get out of the box (LWR's sample: 16 cheroot
threads; ``pulsar-serve``: one gunicorn worker with 4 threads). The same-threads rounds take the
thread count out of the comparison: fresh servers of both kinds, each with ``N`` request threads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import cpu, measure, trace
from bench.client import Driver, Poll
from bench.measure import Failures
from bench.servers import BenchServer, LwrBench, PulsarBench

if TYPE_CHECKING:
    from bench.run import Plan

#: what the JSON keeps of every round
_ROUND_KEYS = ("jobs_per_s", "seconds", "load_average", "status_polls_per_job", "cpu", "breakdown")


def rounds(
    plan: Plan,
    servers: dict[str, BenchServer],
    scratch: Path,
    failures: Failures,
    label: str = "throughput",
) -> dict[str, dict[str, Any]]:
    """Alternating rounds, the best kept per server: a burst of other work on this shared
    machine then costs a round, not the result. Every round is kept, with its load average."""
    done: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for round_ in range(plan.throughput_rounds):
        for name, server in servers.items():
            step(f"{label} {name} (round {round_ + 1}/{plan.throughput_rounds})")
            driver = Driver(server.url, "urllib", Poll(plan.throughput_poll))
            marks: dict[str, dict[str, float]] = {}
            meter = cpu.Meter(server.pid)
            meter.start()
            result = measure.throughput(
                driver,
                plan.throughput_jobs,
                plan.threads,
                scratch,
                failures,
                name,
                tag=f"{round_}-",
                marks=marks,
            )
            result["cpu"] = meter.stop(result["completed"])
            result["load_average"] = measure.load_average()
            result["breakdown"] = breakdown(server, marks)
            print(
                f"  {result['jobs_per_s']} jobs/s, load average {result['load_average']}; "
                f"{result['status_polls_per_job']} polls per job; "
                f"CPU ms per job: {cpu.describe(result['cpu'])}"
            )
            print(trace.render(f"  {label} {name}: per-phase", result["breakdown"]))
            done[name].append(result)
    summaries = {}
    for name, results in done.items():
        best = max(results, key=lambda r: r["jobs_per_s"])
        summaries[name] = {
            **best,
            "rounds": [r["jobs_per_s"] for r in results],
            # every round's CPU over every round's jobs: CPU per job hardly moves with the load
            "cpu": cpu.combine([r["cpu"] for r in results]),
            "round_details": [{k: r.get(k) for k in _ROUND_KEYS} for r in results],
        }
    return summaries


def same_threads(
    plan: Plan, concurrency: int, scratch: Path, failures: Failures
) -> dict[str, dict[str, Any]]:
    """Throughput rounds on fresh servers of both kinds with ``N`` request threads each, for
    every ``N`` of ``plan.same_threads``; keyed by ``str(N)``."""
    out: dict[str, dict[str, Any]] = {}
    for threads in plan.same_threads:
        servers: dict[str, BenchServer] = {
            "lwr": LwrBench(scratch / f"lwr-t{threads}", concurrency),
            "pulsar": PulsarBench(scratch / f"pulsar-t{threads}", concurrency),
        }
        try:
            for server in servers.values():
                server.threads = threads
                server.configure()
                server.start()
            label = f"throughput, both {threads} request threads,"
            out[str(threads)] = rounds(plan, servers, scratch, failures, label)
        finally:
            for server in servers.values():
                server.stop()
    return out


def breakdown(server: BenchServer, marks: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Per-phase breakdown of these jobs: client marks, plus LWR's trace when it wrote one."""
    server_marks = None
    if getattr(server, "trace", False):
        server_marks = trace.server_marks(server.log_path, marks)
    return trace.breakdown(marks, server_marks)


def step(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)
