"""The scale workload: status and restart times as the number of finished jobs grows.

The history is made in two ways, and every level says how many of each it holds: the first
``plan.scale_real`` jobs (100 by default) are real, run through the protocol (setup, submit
``true``, wait; never cleaned) on both servers at once; the rest are clones of the last real job's
finished state, written with the servers stopped (:mod:`bench.history`: its directory, and for
LWR its job-store rows, under fresh ids). Creating 100,000 jobs through Pulsar's protocol would
take over an hour and measure nothing that matters here; cloning them takes about a minute. A
random sample of clones is asked for its status through the client before and after the timed
restarts (each must be ``complete``), and after the last level a few clones and a real job are
cleaned through the client, so clones the servers did not take as their own fail the run.

Status requests and restarts are timed at each N. A fresh pair of servers runs this, with its
directories on a tmpfs (``/dev/shm``, or ``LWR_BENCH_SCALE_DIR``) when one has room: an ext4
volume mounted with ``discard`` needs minutes to delete tens of thousands of job directories
(9 minutes for 20,000 jobs, 2026-11-22). The deletion at the end is timed and reported beside the
test's own duration.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import history, measure, scale_storage
from bench.client import Driver, Poll
from bench.history import history_id
from bench.measure import Failures
from bench.servers import BenchServer, LwrBench, PulsarBench
from bench.throughput import step

if TYPE_CHECKING:
    from bench.run import Plan

#: memory left to everything else when cloning: a level that would leave less is not made
_MEMORY_MARGIN = 4 * 1024**3
#: clones written per task of the process pool (both cores busy, progress between tasks)
_CHUNK = 5000
#: clones (and one real job) cleaned through the client after the last level
_CLEAN_SAMPLE = 5


def measure_all(
    plan: Plan,
    concurrency: int,
    scratch: Path,
    results: dict[str, dict[str, Any]],
    failures: Failures,
) -> None:
    """Start the pair, run every level, stop them, and time the deletion of their directories."""
    started = time.perf_counter()
    storage = scale_storage.choose(scratch, plan.scale_levels[-1])
    root = storage.root
    servers: dict[str, BenchServer] = {
        "lwr": LwrBench(root / "lwr", concurrency),
        "pulsar": PulsarBench(root / "pulsar", concurrency),
    }
    used: dict[str, int] = {}
    try:
        for server in servers.values():
            server.configure()
            server.start()
        _levels(plan, servers, results, failures)
        used = {name: _bytes_used(server.directory) for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        test_s = round(time.perf_counter() - started, 2)
        cleanup = storage.remove([server.directory for server in servers.values()])
    for name in servers:
        results[name]["scale_storage"] = storage.what
        results[name]["scale_test_s"] = test_s
        results[name]["scale_cleanup_s"] = cleanup
        results[name]["scale_bytes_used"] = used.get(name)


def _bytes_used(directory: Path) -> int:
    """Bytes the directory's files take (``du``: whole blocks, as a tmpfs charges them)."""
    du = subprocess.run(["du", "-sB1", str(directory)], capture_output=True, text=True)
    return int(du.stdout.split()[0]) if du.returncode == 0 else -1


def _staging(server: BenchServer) -> Path:
    """Where both servers keep their job directories in the bench's configuration."""
    return server.directory / "files" / "staging"


def _levels(
    plan: Plan,
    servers: dict[str, BenchServer],
    results: dict[str, dict[str, Any]],
    failures: Failures,
) -> None:
    """Status and restart times as the number of persisted finished jobs grows."""
    for name in servers:
        results[name]["scale"] = []
    made = real = 0
    templates: dict[str, history.Template] = {}
    for level in plan.scale_levels:
        entry: dict[str, dict[str, Any]] = {name: {"finished_jobs": level} for name in servers}
        want_real = min(level, plan.scale_real)
        if want_real > real:
            step(f"scale: real finished jobs {real}..{want_real - 1} through the protocol")
            for name, creation in _create_history(plan, servers, real, want_real, failures).items():
                entry[name]["creation"] = creation
            real = made = want_real
            time.sleep(1.0)  # let the last jobs' bookkeeping finish before reading or timing
        if level > made:
            if not templates:
                source = _template_id(servers, real)
                templates = {
                    name: history.read_template(_staging(server) / source)
                    for name, server in servers.items()
                }
            short = _room_short(templates, level - made, _staging(servers["lwr"]))
            if short:
                for name in servers:
                    results[name]["scale_stopped"] = f"N={level} not made: {short}"
                step(f"scale: stopping before N={level}: {short}")
                break
            step(f"scale: cloning jobs {made}..{level - 1} on both servers (servers stopped)")
            for name, cloning in _clone(servers, templates, made, level).items():
                entry[name]["cloning"] = cloning
            made = level
        for name, server in servers.items():
            entry[name]["history"] = {
                "real": real,
                "cloned": level - real,
                "template": templates[name].job_id if level > real else None,
            }
            step(f"scale {name} N={level} ({real} real, {level - real} cloned)")
            entry[name].update(_level(plan, name, server, level, real, failures))
            results[name]["scale"].append(entry[name])
    for name, server in servers.items():
        source = templates[name].job_id if templates else ""
        results[name]["scale_history"] = _how_made(name, real, made, source)
        results[name]["scale_clean_check"] = _clean_check(name, server, real, made, failures)


def _template_id(servers: dict[str, BenchServer], real: int) -> str:
    """The newest real job both servers report ``complete`` (a failed one is no template)."""
    for index in range(real - 1, -1, -1):
        job_id = history_id(index)
        try:
            for server in servers.values():
                Driver(server.url, "urllib", Poll(0.05)).status_seconds(job_id)
        except Exception:
            continue
        return job_id
    raise RuntimeError("no real finished job to clone: every one failed")


def _how_made(name: str, real: int, made: int, source: str) -> str:
    """How the history was made, in words, for the JSON."""
    text = f"{real} real jobs through the protocol ({history_id(0)}..{history_id(real - 1)})"
    if made <= real:
        return text
    what = "its job directory" + (" and its job-store rows" if name == "lwr" else "")
    return (
        f"{text}; {history_id(real)}..{history_id(made - 1)} cloned from "
        f"{source}'s finished state ({what}) with the server stopped"
    )


def _create_history(
    plan: Plan, servers: dict[str, BenchServer], first: int, last: int, failures: Failures
) -> dict[str, dict[str, Any]]:
    """Real finished jobs ``first``..``last - 1`` on both servers at once.

    Creating them is not measured, so both servers fill at the same time, and the client polls
    every 50 ms: fewer status requests leave the two cores to the jobs being created.
    """
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        futures = {
            name: pool.submit(
                measure.create_finished,
                Driver(server.url, "urllib", Poll(0.05)),
                first,
                last,
                plan.threads,
                failures,
                name,
            )
            for name, server in servers.items()
        }
    return {name: future.result() for name, future in futures.items()}


def _room_short(templates: dict[str, history.Template], count: int, place: Path) -> str:
    """Why ``count`` more clones of each template would not fit ('' if they do)."""
    stat = os.statvfs(place)
    return history.room_short(
        sum(template.data_bytes for template in templates.values()) * count,
        sum(template.inodes for template in templates.values()) * count,
        sum(template.tmpfs_bytes for template in templates.values()) * count,
        free_bytes=stat.f_bavail * stat.f_frsize,
        free_inodes=stat.f_favail if stat.f_files else None,
        available=history.mem_available(),
        margin=_MEMORY_MARGIN,
    )


def _clone(
    servers: dict[str, BenchServer],
    templates: dict[str, history.Template],
    first: int,
    last: int,
) -> dict[str, dict[str, Any]]:
    """Clones ``first``..``last - 1`` on both servers, stopped meanwhile; then start them again."""
    for server in servers.values():
        server.stop()
    began = time.perf_counter()
    out: dict[str, dict[str, Any]] = {name: {"clones": last - first} for name in servers}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {
            name: [
                pool.submit(
                    history.clone_directories,
                    templates[name],
                    _staging(server),
                    [history_id(i) for i in range(start, min(start + _CHUNK, last))],
                )
                for start in range(first, last, _CHUNK)
            ]
            for name, server in servers.items()
        }
        for name, chunks in futures.items():
            written = sum(chunk.result() for chunk in chunks)
            out[name]["directories"] = written
    directories_s = round(time.perf_counter() - began, 2)
    for name, server in servers.items():
        out[name]["directories_s"] = directories_s
        if isinstance(server, LwrBench):
            rows_began = time.perf_counter()
            ids = [history_id(i) for i in range(first, last)]
            database = server.directory / "files" / "persisted_data" / "jobs.sqlite3"
            out[name]["rows"] = history.clone_rows(database, templates[name].job_id, ids)
            out[name]["rows_s"] = round(time.perf_counter() - rows_began, 2)
        else:
            out[name]["rows"] = {}  # Pulsar 0.16 keeps nothing for a finished job but its directory
    for name, server in servers.items():
        out[name]["start_after_cloning_s"] = round(server.start(), 3)
    return out


def _level(
    plan: Plan, name: str, server: BenchServer, level: int, real: int, failures: Failures
) -> dict[str, Any]:
    """Status time, restart time and status time after the restart, at ``level`` jobs."""
    driver = Driver(server.url, "urllib", Poll(plan.throughput_poll))
    probes = [history_id(i) for i in (0, level // 2, level - 1)]
    clones = history.sample(real, level, plan.scale_sample, seed=level)
    seen = _check_complete(driver, clones, failures, name)
    before = measure.status_time(driver, probes, plan.status_repeats, failures, name)
    restarts = [server.restart() for _ in range(plan.restarts)]
    after = measure.status_time(driver, probes, plan.status_repeats, failures, name)
    seen_after = _check_complete(driver, clones, failures, name)
    return {
        "status": before,
        "status_after_restart": after,
        "restart_s": round(statistics.median(restarts), 3),
        "restarts_s": [round(r, 3) for r in restarts],
        "clones_checked": {"sample": len(clones), "complete": seen, "after_restart": seen_after},
    }


def _check_complete(driver: Driver, ids: list[str], failures: Failures, name: str) -> int:
    """How many of ``ids`` the server reports ``complete`` (each other answer is a failure)."""
    complete = 0
    for job_id in ids:
        try:
            driver.status_seconds(job_id)
            complete += 1
        except Exception as exc:
            failures.add(name, f"cloned job {job_id}", exc)
    return complete


def _clean_check(
    name: str, server: BenchServer, real: int, made: int, failures: Failures
) -> dict[str, Any]:
    """Clean a few clones and one real job through the client; each directory must go."""
    driver = Driver(server.url, "urllib", Poll(0.05))
    ids = [*history.sample(real, made, _CLEAN_SAMPLE, seed=made + 1), history_id(0)]
    cleaned = 0
    for job_id in ids:
        try:
            driver.client(job_id).clean()
            if (_staging(server) / job_id).exists():
                raise RuntimeError(f"{job_id}'s directory is still there after clean")
            if _reported_complete(driver, job_id):
                raise RuntimeError(f"{job_id} is still reported complete after clean")
            cleaned += 1
        except Exception as exc:
            failures.add(name, f"clean of history job {job_id}", exc)
    return {"jobs": ids, "cleaned": cleaned}


def _reported_complete(driver: Driver, job_id: str) -> bool:
    """Whether the server still answers ``complete`` for ``job_id`` (an error means no)."""
    try:
        status = driver.client(job_id).raw_check_complete()
    except Exception:
        return False
    return isinstance(status, dict) and status.get("status") == "complete"
