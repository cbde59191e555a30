"""The scale workload: status and restart times as the number of finished jobs grows.

N finished jobs are created through the protocol (setup, submit ``true``, wait; never cleaned) on
both servers at once, as their creation is not timed; then status requests and restarts are
timed at each N. This runs on a fresh pair of servers whose directories live on a tmpfs
(``/dev/shm``, or ``LWR_BENCH_SCALE_DIR``) when one is available: tens of thousands of job
directories are then deleted in seconds at the end instead of the minutes an ext4 volume mounted
with ``discard`` needs (9 minutes for 20,000 jobs, 2026-11-22). Status and restart then measure
the servers' own work (their growth in N is the point), not the disk's write latency.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import measure
from bench.client import Driver, Poll
from bench.measure import Failures
from bench.servers import BenchServer, LwrBench, PulsarBench
from bench.throughput import step

if TYPE_CHECKING:
    from bench.run import Plan

#: free space a tmpfs must have to hold the scale test (a job costs a few pages per server)
_TMPFS_NEEDED = 4 * 1024**3


def measure_all(
    plan: Plan,
    concurrency: int,
    scratch: Path,
    results: dict[str, dict[str, Any]],
    failures: Failures,
) -> None:
    """Start the pair, run every level, stop them, and time the deletion of their directories."""
    root, storage = _root(scratch)
    servers: dict[str, BenchServer] = {
        "lwr": LwrBench(root / "lwr", concurrency),
        "pulsar": PulsarBench(root / "pulsar", concurrency),
    }
    try:
        for server in servers.values():
            server.configure()
            server.start()
        _levels(plan, servers, results, failures)
    finally:
        for server in servers.values():
            server.stop()
        started = time.perf_counter()
        shutil.rmtree(root, ignore_errors=True)
        cleanup = round(time.perf_counter() - started, 2)
    for name in servers:
        results[name]["scale_storage"] = storage
        results[name]["scale_cleanup_s"] = cleanup


def _root(scratch: Path) -> tuple[Path, str]:
    """A fresh directory for the scale servers, on a tmpfs when there is room: (path, what)."""
    for candidate in (os.environ.get("LWR_BENCH_SCALE_DIR"), "/dev/shm"):
        if not candidate or not os.path.isdir(candidate) or not os.access(candidate, os.W_OK):
            continue
        stat = os.statvfs(candidate)
        if stat.f_bavail * stat.f_frsize >= _TMPFS_NEEDED:
            return Path(tempfile.mkdtemp(prefix="lwr-bench-scale-", dir=candidate)), candidate
    return scratch / "scale", f"{scratch} (no tmpfs with room)"


def _levels(
    plan: Plan,
    servers: dict[str, BenchServer],
    results: dict[str, dict[str, Any]],
    failures: Failures,
) -> None:
    """Status and restart times as the number of persisted finished jobs grows."""
    for name in servers:
        results[name]["scale"] = []
    created = 0
    for level in plan.scale_levels:
        step(f"scale: creating finished jobs up to N={level} on both servers")
        _create_history(plan, servers, created, level, failures, results)
        created = level
        time.sleep(1.0)  # let the last jobs' bookkeeping finish before timing status
        for name, server in servers.items():
            step(f"scale {name} N={level}")
            results[name]["scale"][-1].update(_level(plan, name, server, level, failures))


def _create_history(
    plan: Plan,
    servers: dict[str, BenchServer],
    first: int,
    last: int,
    failures: Failures,
    results: dict[str, dict[str, Any]],
) -> None:
    """Finished jobs ``first``..``last - 1`` on both servers at once.

    Creating them is not measured, so both servers fill at the same time, and the client polls
    every 50 ms: fewer status requests leave the two cores to the jobs being created.
    """
    threads = plan.threads
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        futures = {
            name: pool.submit(
                measure.create_finished,
                Driver(server.url, "urllib", Poll(0.05)),
                first,
                last,
                threads,
                failures,
                name,
            )
            for name, server in servers.items()
        }
    for name, future in futures.items():
        results[name]["scale"].append({"finished_jobs": last, "creation": future.result()})


def _level(
    plan: Plan, name: str, server: BenchServer, level: int, failures: Failures
) -> dict[str, Any]:
    """Status time, restart time and status time after the restart, at ``level`` jobs."""
    driver = Driver(server.url, "urllib", Poll(plan.throughput_poll))
    probes = [f"hist{i}" for i in (0, level // 2, level - 1)]
    before = measure.status_time(driver, probes, plan.status_repeats, failures, name)
    restarts = [server.restart() for _ in range(plan.restarts)]
    after = measure.status_time(driver, probes, plan.status_repeats, failures, name)
    return {
        "status": before,
        "status_after_restart": after,
        "restart_s": round(statistics.median(restarts), 3),
        "restarts_s": [round(r, 3) for r in restarts],
    }
