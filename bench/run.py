"""One benchmark run: both servers up side by side, every measurement, both servers down."""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import WORKLOADS, floor, measure, mq, scale, staging, throughput, trace
from bench.client import Driver, Poll
from bench.measure import MIB, Failures
from bench.profile import ProfiledLwr, lifecycle_times, route_times, summarize
from bench.servers import BenchServer, LwrBench, PulsarBench


@dataclass(frozen=True)
class Plan:
    """How much of everything to do; ``--quick`` is the CI smoke test's smaller plan."""

    mode: str
    latency_jobs: int
    throughput_jobs: int
    threads: int
    staging_bytes: int
    scale_levels: tuple[int, ...]
    status_repeats: int
    restarts: int
    throughput_rounds: int
    mq_jobs: int
    staging_runs: int
    #: the workloads to run (``--only`` narrows it); memory is measured whenever latency is
    workloads: tuple[str, ...] = WORKLOADS
    latency_poll: float = 0.005
    # Eight polling threads at 100 Hz would spend the two cores on status requests.
    throughput_poll: float = 0.02
    #: LWR writes its job trace (lwr.trace at DEBUG): the per-phase breakdown gets server phases
    trace: bool = False
    #: request threads given to both servers for the same-threads throughput comparison
    same_threads: tuple[int, ...] = ()
    #: jobs published at once in message-queue mode (jobs per second through the broker)
    mq_burst: int = 0
    #: scale history: this many real jobs through the protocol, clones of one of them beyond
    scale_real: int = 100
    #: clones whose status is checked through the client at each scale level
    scale_sample: int = 20

    @classmethod
    def full(cls) -> Plan:
        plan = cls("full", 60, 200, 8, 1024 * MIB, (100, 1000, 10000), 60, 3, 2, 30, 3)
        # Pulsar's default thread count, then LWR's
        return dataclasses.replace(plan, same_threads=(4, 16), mq_burst=200)

    @classmethod
    def quick(cls) -> Plan:
        return cls("quick", 15, 32, 8, 64 * MIB, (100, 1000), 20, 1, 1, 5, 1, mq_burst=10)


def run(plan: Plan) -> dict[str, Any]:
    """Run ``plan`` against freshly configured servers; return the whole result document."""
    began = time.time()
    load_at_start = measure.load_average()
    concurrency = os.cpu_count() or 1
    failures = Failures()
    with tempfile.TemporaryDirectory(prefix="lwr-bench-") as tmp:
        scratch = Path(tmp)
        lwr = LwrBench(scratch / "lwr", concurrency)
        lwr.trace = plan.trace
        servers: dict[str, BenchServer] = {
            "lwr": lwr,
            "pulsar": PulsarBench(scratch / "pulsar", concurrency),
        }
        results: dict[str, dict[str, Any]] = {name: {} for name in servers}
        try:
            for name, server in servers.items():
                server.configure()
                results[name]["first_start_s"] = round(server.start(), 3)
            _phases(plan, servers, results, scratch, failures)
        finally:
            for server in servers.values():
                server.stop()
        # After the default servers are gone: fresh ones with the same request threads each
        same = {}
        if "throughput" in plan.workloads and plan.same_threads:
            same = throughput.same_threads(plan, concurrency, scratch, failures)
        if "scale" in plan.workloads:
            scale.measure_all(plan, concurrency, scratch, results, failures)
        # After the HTTP servers are gone: two more, configured for the message queue.
        _step("message-queue mode")
        mq_mode = (
            mq.measure(plan.mq_jobs, concurrency, scratch, failures, plan.mq_burst)
            if "mq" in plan.workloads
            else {"measured": False, "note": "not measured", "reason": "left out by --only"}
        )
        versions = {name: server.versions() for name, server in servers.items()}
    return {
        "meta": {
            **_meta(plan, began, concurrency, versions),
            "load_average": {"start": load_at_start, "end": measure.load_average()},
        },
        "results": results,
        "mq_mode": mq_mode,
        "same_threads": same,
        "failures": failures.by_server,
        "failed_jobs": failures.count(),
        "peer_retries": failures.retried,
    }


def _phases(
    plan: Plan,
    servers: dict[str, BenchServer],
    results: dict[str, dict[str, Any]],
    scratch: Path,
    failures: Failures,
) -> None:
    time.sleep(1.0)  # let both settle before calling them idle
    for name, server in servers.items():
        results[name]["rss_idle_mib"] = measure.rss_mib(server)
    if "latency" in plan.workloads:
        _step("latency (with the floor server alternating)")
        marks: measure.Marks = {}
        latencies, results["floor"] = _latency_with_floor(plan, servers, scratch, failures, marks)
        for name, summary in latencies.items():
            summary["breakdown"] = throughput.breakdown(servers[name], marks.get(name, {}))
            summary["load_average"] = measure.load_average()
            results[name]["latency"] = summary
            print(trace.render(f"latency {name}: per-phase", summary["breakdown"]))
    if "throughput" in plan.workloads:
        summaries = _throughput_with_floor(plan, servers, scratch, failures)
        results.setdefault("floor", {})["throughput"] = summaries.pop("floor")
        for name, summary in summaries.items():
            results[name]["throughput"] = summary
            results[name]["rss_after_throughput_mib"] = measure.rss_mib(servers[name])
    if "staging" in plan.workloads:
        staged = staging.measure_all(plan, servers, scratch, failures)
        results["reference"] = staged.pop("reference")
        for name, figures in staged.items():
            results[name].update(figures)


def _throughput_with_floor(
    plan: Plan, servers: dict[str, BenchServer], scratch: Path, failures: Failures
) -> dict[str, dict[str, Any]]:
    """The throughput rounds, the floor server (:mod:`bench.floor`, as many job slots as the
    servers) taking its turn: the CPU per job that no server can save with this client."""
    floor_server = floor.FloorBench(scratch / "floor-throughput", servers["lwr"].concurrency)
    floor_server.slots = floor_server.concurrency
    floor_server.configure()
    floor_server.start()
    try:
        return throughput.rounds(plan, {**servers, "floor": floor_server}, scratch, failures)
    finally:
        floor_server.stop()


def _latency_with_floor(
    plan: Plan,
    servers: dict[str, BenchServer],
    scratch: Path,
    failures: Failures,
    marks: measure.Marks,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The latency jobs, the floor server (:mod:`bench.floor`) taking its turn job by job.

    Returns the servers' summaries and the floor's: its own latency, the per-request and
    per-process costs, and what the 5x target means against it.
    """
    floor_server = floor.FloorBench(scratch / "floor", 1)
    floor_server.configure()
    floor_server.start()
    try:
        urls = {**{n: s.url for n, s in servers.items()}, "floor": floor_server.url}
        drivers = {n: Driver(url, "urllib", Poll(plan.latency_poll)) for n, url in urls.items()}
        pids = {**{n: s.pid for n, s in servers.items()}, "floor": floor_server.pid}
        latencies = measure.latency(drivers, plan.latency_jobs, scratch, failures, marks, pids)
        requests = floor.request_costs(urls, 4 * plan.latency_jobs)
    finally:
        floor_server.stop()
    summary: dict[str, Any] = {
        "latency": latencies.pop("floor"),
        "request_ms": requests,
        "process_ms": floor.process_costs(plan.latency_jobs, scratch),
        "load_average": measure.load_average(),
    }
    medians = [latencies.get(n, {}).get("median_ms") for n in ("lwr", "pulsar")]
    floor_ms = summary["latency"].get("median_ms")
    if floor_ms and all(medians):
        summary["analysis"] = floor.analysis(medians[0], medians[1], floor_ms)
    return latencies, summary


def profile_lwr(plan: Plan, out_dir: Path) -> dict[str, Any]:
    """Run the latency, throughput and staging workloads each against a fresh LWR under py-spy."""
    concurrency = os.cpu_count() or 1
    failures = Failures()
    summaries: dict[str, Any] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lwr-bench-profile-") as tmp:
        scratch = Path(tmp)
        workloads = {
            "latency": lambda d: measure.latency({"lwr": d}, plan.latency_jobs, scratch, failures),
            "throughput": lambda d: measure.throughput(
                d, plan.throughput_jobs, plan.threads, scratch, failures, "lwr"
            ),
            "staging_curl": lambda d: staging.profile_once(d, plan, scratch, failures),
        }
        for phase, workload in workloads.items():
            if phase.split("_")[0] not in plan.workloads:
                continue  # --only narrows the profile too
            _step(f"profile LWR: {phase}")
            raw = out_dir / f"profile-lwr-{phase}.raw"
            server = ProfiledLwr(scratch / phase, concurrency, raw)
            server.configure()
            server.start()
            transport = "curl" if phase.startswith("staging") else "urllib"
            poll = plan.latency_poll if phase == "latency" else plan.throughput_poll
            try:
                result = workload(Driver(server.url, transport, Poll(poll, timeout=600)))
            finally:
                server.stop()
            summaries[phase] = {
                "workload": result,
                "server_ms_per_route": route_times(server.log_path),
                "job_lifecycle_ms": lifecycle_times(server.log_path),
                "profile": summarize(raw),
            }
    return {"plan": asdict(plan), "phases": summaries, "failures": failures.by_server}


_step = throughput.step


def _meta(
    plan: Plan, began: float, concurrency: int, versions: dict[str, dict[str, str]]
) -> dict[str, Any]:
    import pulsar

    return {
        "mode": plan.mode,
        "started": datetime.datetime.fromtimestamp(began, datetime.timezone.utc).isoformat(),
        "duration_s": round(time.time() - began, 1),
        "plan": asdict(plan),
        "concurrency": concurrency,
        "machine": {
            "nproc": os.cpu_count(),
            "memory_gib": round(_memory_bytes() / 1024**3, 1),
            "cpu": _cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {
            **versions,
            "client": f"pulsar-galaxy-lib {pulsar.__version__}",
            "python_executable": sys.executable,
        },
    }


def _memory_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
