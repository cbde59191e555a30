"""The measurements, each taking a started server (or its client) and returning plain numbers.

Every function records the jobs that failed instead of raising, so one bad job neither hides
the others' numbers nor stops the run; the caller turns any failure into a non-zero exit.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import cpu
from bench.client import Driver
from bench.parallel import run_parallel
from bench.servers import BenchServer

MIB = 1024 * 1024
_BLOCK = 4 * MIB


@dataclass
class Failures:
    """Jobs that went wrong, per server: (what, error) pairs, kept for the report."""

    by_server: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    #: jobs the harness ran a second time and that passed then (only Pulsar's jobs that hit its
    #: known exec race, return code 126): reported beside the figures, per server
    retried: list[dict[str, str]] = field(default_factory=list)

    def add(self, server: str, what: str, error: BaseException) -> None:
        self.by_server.setdefault(server, []).append(
            {"what": what, "error": f"{type(error).__name__}: {error}"[:500]}
        )

    def count(self) -> int:
        return sum(len(items) for items in self.by_server.values())


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was really measured, not an interpolation.

    The rank is ``ceil(fraction * n)`` (the 90th percentile of 10 values is the 9th smallest);
    the tolerance keeps ``0.9 * 30`` = 27.000000000000004 at rank 27.
    """
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered) - 1e-9))
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


#: per server, per job id: the client's wall-clock marks of each step (bench.trace)
Marks = dict[str, dict[str, dict[str, float]]]


def latency(
    drivers: dict[str, Driver],
    jobs: int,
    scratch: Path,
    failures: Failures,
    marks: Marks | None = None,
    pids: dict[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """End-to-end time of one small job, servers alternating job by job.

    Alternating means a burst of other work on this shared machine lands on both servers alike
    instead of skewing whichever happened to be running. ``marks`` receives each job's client
    marks, per server. With ``pids`` (server name -> pid) each summary gets ``cpu``, CPU ms per
    job (:mod:`bench.cpu`): the client's counted job by job in this thread, each server tree's
    from the start of the run to its end (its idle time while the others run included).
    """
    source = scratch / "small_input.txt"
    source.write_bytes(b"a small input of a small job\n" * 8)
    times: dict[str, list[float]] = {name: [] for name in drivers}
    steps: dict[str, dict[str, list[float]]] = {name: {} for name in drivers}
    meters = {name: cpu.Meter(pid) for name, pid in (pids or {}).items() if name in drivers}
    client_s = dict.fromkeys(drivers, 0.0)
    for meter in meters.values():
        meter.start()
    for index in range(jobs):
        for name, driver in drivers.items():
            destination = scratch / f"small_output_{name}.txt"
            client_started = time.thread_time()
            started = time.perf_counter()
            job_marks = None if marks is None else marks.setdefault(name, {})
            try:
                job_steps = driver.copy_job(
                    f"lat{index}",
                    source,
                    destination,
                    marks=None if job_marks is None else job_marks.setdefault(f"lat{index}", {}),
                )
                if destination.read_bytes() != source.read_bytes():
                    raise RuntimeError("the downloaded output differs from the input")
            except Exception as exc:
                failures.add(name, f"latency job {index}", exc)
                continue
            times[name].append(time.perf_counter() - started)
            client_s[name] += time.thread_time() - client_started
            for step, seconds in job_steps.items():
                steps[name].setdefault(step, []).append(seconds)
            destination.unlink()
    spent = {name: m.stop(len(times[name]), client_s[name]) for name, m in meters.items()}
    return {
        name: {
            **summary_ms(values),
            "steps_median_ms": {
                step: round(statistics.median(s) * 1000, 2) for step, s in steps[name].items()
            },
            **({"cpu": spent[name]} if name in spent else {}),
        }
        for name, values in times.items()
    }


def throughput(
    driver: Driver,
    jobs: int,
    threads: int,
    scratch: Path,
    failures: Failures,
    name: str,
    *,
    tag: str = "",
    marks: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Jobs per second when ``threads`` clients run small jobs as fast as they are answered.

    Job ids are ``tp{tag}{index}`` (a round's ``tag`` keeps its ids apart from other rounds');
    ``marks`` receives each job's client marks by job id.
    """
    source = scratch / "tp_input.txt"
    source.write_bytes(b"throughput\n")
    out = scratch / f"tp_{name}"
    out.mkdir(exist_ok=True)

    def one(index: int, attempt: int = 0) -> None:
        destination = out / f"o{index}.txt"
        job_id = f"tp{tag}{index}" + (f"r{attempt}" if attempt else "")
        job_marks = None if marks is None else marks.setdefault(job_id, {})
        driver.copy_job(job_id, source, destination, marks=job_marks)
        if destination.read_bytes() != b"throughput\n":
            raise RuntimeError(f"job tp{index}: wrong output")

    polls = driver.polls
    started = time.perf_counter()
    done = run_parallel(one, range(jobs), threads, failures, name, "throughput job")
    elapsed = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return {
        "jobs": jobs,
        "completed": done,
        "threads": threads,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(done / elapsed, 2),
        # each poll is a request the server answers: part of its CPU per job
        "status_polls_per_job": round((driver.polls - polls) / jobs, 2) if jobs else None,
    }


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


#: the physical reference: the kernel copies (copy_file_range), no user-space buffer
CP = ("cp", "{src}", "{dst}")
#: a user-space copy in 16 KiB pieces: what any client that writes as libcurl delivers
#: (16 KiB write callbacks) can reach on this machine, with no network at all
DD_16K = ("dd", "if={src}", "of={dst}", "bs=16K", "status=none")


class Settle:
    """The same starting point for every timed transfer and every ``cp``, plus a paired ``cp``.

    On this VM a page freed for more than a few seconds goes back to the host, and the next
    write that needs it pays a fault per page: a 1 GiB file write runs at 450-750 MiB/s after a
    pause of 3 s and at 3,670-5,010 MiB/s right after another write (measured 2026-11-22), and
    even prepared alike, three ``cp`` of the same 1 GiB in a row ran at 3,758, 1,668 and 984 MiB/s.
    Which of these a transfer meets would otherwise depend on what ran just before it. So
    before each timed step, untimed: ``sync`` (no dirty pages of earlier steps left to throttle
    this one), one write and delete of a scratch file as large as the transfer (freshly freed
    pages to write into) and one read of the file the step is about to read (in the page cache).

    With ``paired_cp`` a ``cp`` of that same file into the scratch directory is then timed and
    recorded in :attr:`paired` (and the preparation repeated), so each transfer has a ``cp`` of
    its own bytes, made moments before under the same preparation, to be compared with: the
    download's ``cp`` reads the server's output file, as the download does.
    """

    def __init__(self, scratch: Path, size: int, paired_cp: bool = False) -> None:
        self.scratch = scratch
        self.size = size
        self.paired_cp = paired_cp
        #: seconds of each paired ``cp``, in the order of the steps
        self.paired: list[float] = []

    def __call__(self, path: Path) -> None:
        self.prepare(path)
        if self.paired_cp:
            self.paired.append(self.time_cp(path))
            self.prepare(path)

    def prepare(self, path: Path) -> None:
        os.sync()
        warm = self.scratch / "settle_warm.dat"
        block = bytes(_BLOCK)
        with open(warm, "wb", buffering=0) as handle:
            left = self.size
            while left > 0:
                left -= handle.write(block[: min(left, _BLOCK)])
        warm.unlink()  # deleted before writeback: the pages return to the free pool, no disk I/O
        with open(path, "rb", buffering=0) as handle:
            while handle.read(_BLOCK):
                pass

    def time_cp(self, path: Path, command: tuple[str, ...] = CP) -> float:
        """Seconds of one copy of ``path`` into the scratch directory by ``command``."""
        destination = self.scratch / "cp_copy.dat"
        argv = [part.format(src=path, dst=destination) for part in command]
        started = time.perf_counter()
        subprocess.run(argv, check=True)
        elapsed = time.perf_counter() - started
        destination.unlink()
        return elapsed


def cp_reference(
    source: Path, settle: Settle, command: tuple[str, ...] = CP, repeats: int = 3
) -> dict[str, Any]:
    """MiB/s of a local copy of the staging file (``cp`` by default), prepared as transfers are."""
    size = source.stat().st_size
    times = []
    for _ in range(repeats):
        settle.prepare(source)
        times.append(settle.time_cp(source, command))
    return {
        "command": " ".join(command),
        "bytes": size,
        "runs_mib_per_s": [round(size / MIB / t, 1) for t in times],
        "median_s": round(statistics.median(times), 4),
        "mib_per_s": round(size / MIB / statistics.median(times), 1),
    }


class StagingDriver(Protocol):
    transport: str

    def staged_job(
        self, job_id: str, source: Path, destination: Path, settle: Settle
    ) -> tuple[float, float]: ...


def staging(
    driver: StagingDriver | Driver,
    source: Path,
    digest: str,
    settle: Settle,
    failures: Failures,
    name: str,
    run: int = 0,
    cli: bool = False,
) -> dict[str, Any]:
    """Seconds of one upload of ``source`` and one download of the same bytes as an output.

    With ``cli`` the bytes move with the curl program instead of the driver's client.
    """
    label = "curl-cli" if cli else driver.transport
    destination = settle.scratch / f"staged_{name}_{label}.dat"
    job = driver.cli_staged_job if cli and isinstance(driver, Driver) else driver.staged_job
    before = len(settle.paired)
    try:
        up, down = job(f"stage_{label.replace('-', '_')}_{run}", source, destination, settle)
        if destination.stat().st_size != source.stat().st_size or sha256(destination) != digest:
            raise RuntimeError("the downloaded output differs from the uploaded input")
    except Exception as exc:
        failures.add(name, f"staging with {label}", exc)
        return {"transport": label, "failed": True}
    finally:
        destination.unlink(missing_ok=True)
    timings: dict[str, Any] = {"up_s": up, "down_s": down, "load_average": load_average()}
    paired = settle.paired[before:]
    if len(paired) == 2:
        timings.update(cp_up_s=paired[0], cp_down_s=paired[1])
    return timings


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: every figure is recorded with the load it met."""
    return [round(x, 2) for x in os.getloadavg()]


def staging_summary(label: str, size: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median MiB/s of the runs of one transport (every run's figures kept beside it)."""
    done = [r for r in runs if not r.get("failed")]
    if not done:
        return {"transport": label, "failed": True}
    up = statistics.median(r["up_s"] for r in done)
    down = statistics.median(r["down_s"] for r in done)
    return {
        "transport": label,
        "bytes": size,
        "runs": len(done),
        "up_s": round(up, 3),
        "down_s": round(down, 3),
        "up_mib_per_s": round(size / MIB / up, 1),
        "down_mib_per_s": round(size / MIB / down, 1),
        "runs_up_mib_per_s": [round(size / MIB / r["up_s"], 1) for r in done],
        "runs_down_mib_per_s": [round(size / MIB / r["down_s"], 1) for r in done],
        "runs_load_average": [r["load_average"][0] for r in done if "load_average" in r],
        **{
            # a transfer's MiB/s over its paired cp's: cp seconds / transfer seconds
            f"{way}_cp_fraction": round(
                statistics.median(r[f"cp_{way}_s"] / r[f"{way}_s"] for r in done), 2
            )
            for way in ("up", "down")
            if all(f"cp_{way}_s" in r for r in done)
        },
    }


def rss_mib(server: BenchServer) -> float:
    return round(server.rss_bytes() / MIB, 1)


def create_finished(
    driver: Driver, first: int, last: int, threads: int, failures: Failures, name: str
) -> dict[str, Any]:
    """Jobs ``hist{first}``..``hist{last - 1}``: set up, run ``true``, finished, never cleaned."""
    started = time.perf_counter()
    done = run_parallel(
        lambda index, attempt=0: driver.true_job(
            f"hist{index}" + (f"r{attempt}" if attempt else "")
        ),
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
