"""The measurements, each taking a started server (or its client) and returning plain numbers.

Every function records the jobs that failed instead of raising, so one bad job neither hides
the others' numbers nor stops the run; the caller turns any failure into a non-zero exit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.client import Driver
from bench.servers import BenchServer

MIB = 1024 * 1024
_BLOCK = 4 * MIB


@dataclass
class Failures:
    """Jobs that went wrong, per server: (what, error) pairs, kept for the report."""

    by_server: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    #: jobs of the peer that hit its known exec race (return code 126) and passed on a retry
    retried: list[dict[str, str]] = field(default_factory=list)

    def add(self, server: str, what: str, error: BaseException) -> None:
        self.by_server.setdefault(server, []).append(
            {"what": what, "error": f"{type(error).__name__}: {error}"[:500]}
        )

    def count(self) -> int:
        return sum(len(items) for items in self.by_server.values())


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was really measured, not an interpolation."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"n": 0}
    return {
        "n": len(seconds),
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "p90_ms": round(percentile(seconds, 0.9) * 1000, 2),
        "min_ms": round(min(seconds) * 1000, 2),
    }


def latency(
    drivers: dict[str, Driver], jobs: int, scratch: Path, failures: Failures
) -> dict[str, dict[str, Any]]:
    """End-to-end time of one small job, servers alternating job by job.

    Alternating means a burst of other work on this shared machine lands on both servers alike
    instead of skewing whichever happened to be running.
    """
    source = scratch / "small_input.txt"
    source.write_bytes(b"a small input of a small job\n" * 8)
    times: dict[str, list[float]] = {name: [] for name in drivers}
    steps: dict[str, dict[str, list[float]]] = {name: {} for name in drivers}
    for index in range(jobs):
        for name, driver in drivers.items():
            destination = scratch / f"small_output_{name}.txt"
            started = time.perf_counter()
            try:
                job_steps = driver.copy_job(f"lat{index}", source, destination)
                if destination.read_bytes() != source.read_bytes():
                    raise RuntimeError("the downloaded output differs from the input")
            except Exception as exc:
                failures.add(name, f"latency job {index}", exc)
                continue
            times[name].append(time.perf_counter() - started)
            for step, seconds in job_steps.items():
                steps[name].setdefault(step, []).append(seconds)
            destination.unlink()
    return {
        name: {
            **summary_ms(values),
            "steps_median_ms": {
                step: round(statistics.median(s) * 1000, 2) for step, s in steps[name].items()
            },
        }
        for name, values in times.items()
    }


def throughput(
    driver: Driver, jobs: int, threads: int, scratch: Path, failures: Failures, name: str
) -> dict[str, Any]:
    """Jobs per second when ``threads`` clients run small jobs as fast as they are answered."""
    source = scratch / "tp_input.txt"
    source.write_bytes(b"throughput\n")
    out = scratch / f"tp_{name}"
    out.mkdir(exist_ok=True)

    def one(index: int) -> None:
        destination = out / f"o{index}.txt"
        driver.copy_job(f"tp{index}", source, destination)
        if destination.read_bytes() != b"throughput\n":
            raise RuntimeError(f"job tp{index}: wrong output")

    started = time.perf_counter()
    done = _run_parallel(one, range(jobs), threads, failures, name, "throughput job")
    elapsed = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return {
        "jobs": jobs,
        "completed": done,
        "threads": threads,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(done / elapsed, 2),
    }


def _run_parallel(
    work: Callable[[int], None],
    items: Iterable[int],
    threads: int,
    failures: Failures,
    server: str,
    what: str,
) -> int:
    """Run ``work`` over ``items`` on ``threads`` threads; return how many succeeded."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench") as pool:
        futures = {index: pool.submit(work, index) for index in items}
    done = 0
    for index, future in futures.items():
        error = future.exception()
        if error is not None and server == "pulsar" and "(return code 126)" in str(error):
            # Pulsar 0.16 sometimes execs its job script while another thread still holds it
            # open for writing ("Text file busy"): a flaw of the peer, not of this benchmark.
            try:
                work(index)
            except Exception as again:
                error = again
            else:
                failures.retried.append({"what": f"{what} {index}", "error": str(error)[:300]})
                error = None
        if error is None:
            done += 1
        else:
            failures.add(server, f"{what} {index}", error)
    return done


def make_file(path: Path, size: int) -> str:
    """Write ``size`` bytes of incompressible data in blocks; return its SHA-256."""
    block = os.urandom(_BLOCK)
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            chunk = block[: min(left, _BLOCK)]
            handle.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def cp_reference(source: Path, scratch: Path, repeats: int = 3) -> dict[str, Any]:
    """MiB/s of ``cp`` of the staging file on this disk: the physical reference."""
    size = source.stat().st_size
    destination = scratch / "cp_copy.dat"
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(["cp", str(source), str(destination)], check=True)
        times.append(time.perf_counter() - started)
        destination.unlink()
    return {
        "bytes": size,
        "median_s": round(statistics.median(times), 4),
        "mib_per_s": round(size / MIB / statistics.median(times), 1),
    }


def staging(
    driver: Driver,
    source: Path,
    digest: str,
    scratch: Path,
    failures: Failures,
    name: str,
    cli: bool = False,
) -> dict[str, Any]:
    """MiB/s of one upload of ``source`` and one download of the same bytes as an output.

    With ``cli`` the bytes move with the curl program instead of ``pulsar.client``.
    """
    size = source.stat().st_size
    label = "curl-cli" if cli else driver.transport
    destination = scratch / f"staged_{name}_{label}.dat"
    job = driver.cli_staged_job if cli else driver.staged_job
    try:
        up, down = job(f"stage_{label.replace('-', '_')}", source, destination)
        if destination.stat().st_size != size or sha256(destination) != digest:
            raise RuntimeError("the downloaded output differs from the uploaded input")
    except Exception as exc:
        failures.add(name, f"staging with {label}", exc)
        return {"transport": label, "failed": True}
    finally:
        destination.unlink(missing_ok=True)
    return {
        "transport": label,
        "bytes": size,
        "up_s": round(up, 3),
        "down_s": round(down, 3),
        "up_mib_per_s": round(size / MIB / up, 1),
        "down_mib_per_s": round(size / MIB / down, 1),
    }


def rss_mib(server: BenchServer) -> float:
    return round(server.rss_bytes() / MIB, 1)


def create_finished(
    driver: Driver, first: int, last: int, threads: int, failures: Failures, name: str
) -> dict[str, Any]:
    """Jobs ``hist{first}``..``hist{last - 1}``: set up, run ``true``, finished, never cleaned."""
    started = time.perf_counter()
    done = _run_parallel(
        lambda index: driver.true_job(f"hist{index}"),
        range(first, last),
        threads,
        failures,
        name,
        "history job",
    )
    return {"created": done, "seconds": round(time.perf_counter() - started, 2)}


def status_time(
    driver: Driver, job_ids: list[str], repeats: int, failures: Failures, name: str
) -> dict[str, Any]:
    """Median time of a status request of finished jobs (the oldest, the newest, the middle)."""
    times = []
    for round_ in range(repeats):
        job_id = job_ids[round_ % len(job_ids)]
        try:
            times.append(driver.status_seconds(job_id))
        except Exception as exc:
            failures.add(name, f"status of {job_id}", exc)
    return summary_ms(times)
