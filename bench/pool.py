"""``python -m bench.pool``: jobs per second through RabbitMQ with 1, 2 and 4 local pool workers.

The same burst is published by Galaxy's own MQ client (``pulsar.client``) to a pool of N workers
(``pool_worker = true``, each a ``paster serve`` of its own with two slots, as users start them),
and timed from the first setup published to the last final status received. Two bursts:

* ``sleep`` jobs (slot-bound: the pool's capacity is what scales), and
* ``true`` jobs (overhead-bound: what a worker costs per job; on a small machine more workers
  compete for the same cores, so this one is not expected to scale).

Each burst also reports the CPU time (user + system) the workers' process trees spent per job:
on a shared, noisy machine a steadier figure of a worker's cost than the rate. Scaling
efficiency is ``rate(N) / (N * rate(1))``. Numbers are reported, never asserted; the run
exits 1 only when a job did not complete exactly once. Results go to ``bench/results/pool.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench import pool_trace
from bench.measure import load_average

AMQP_URL = os.environ.get("LWR_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
SLOTS = 2


class Pool:
    """N webless pool workers of one fresh queue prefix."""

    def __init__(self, scratch: Path, prefix: str, size: int, traced: bool = False) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.directories = [scratch / f"worker{i}" for i in range(size)]
        self.prefix = prefix
        self.traced = traced

    def start(self) -> float:
        """Start every worker; seconds until all of them consume."""
        started = time.perf_counter()
        for index, directory in enumerate(self.directories):
            directory.mkdir(parents=True)
            _configure(directory, self.prefix, self.traced)
            log = open(directory / "server.log", "ab")
            env = {**os.environ, "LWR_POOL_WORKER_ID": f"bench{index}"}
            self.processes.append(
                subprocess.Popen(
                    [str(BIN / "paster"), "serve", "server.ini"],
                    cwd=directory,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
            log.close()
        for directory, process in zip(self.directories, self.processes, strict=True):
            while "consuming" not in (directory / "server.log").read_text(errors="replace"):
                if process.poll() is not None:
                    raise RuntimeError(f"worker in {directory} exited {process.returncode}")
                time.sleep(0.05)
        return time.perf_counter() - started

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the workers' process trees have used so far.

        Each live process of a tree counts itself and the children it has reaped (a reaped
        job is in its supervisor's count, a reaped supervisor in its parent's): so the sum over
        the live trees is the whole history, whatever the supervision layout. Counted in clock
        ticks by the kernel: a burst of hundreds of jobs makes it precise enough per job.
        """
        import psutil

        total = 0.0
        for process in self.processes:
            try:
                root = psutil.Process(process.pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for member in tree:
                try:
                    times = member.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def finished_per_worker(self) -> list[int]:
        return [
            (d / "server.log").read_text(errors="replace").count("final status")
            for d in self.directories
        ]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def _configure(directory: Path, prefix: str, traced: bool = False) -> None:
    text = (ROOT / "server.ini.sample").read_text()
    if traced:  # per-job marks of every worker (bench/pool_trace.py reads them)
        head, tail = text.split("[logger_trace]", 1)
        text = head + "[logger_trace]" + tail.replace("level = WARNING", "level = DEBUG", 1)
    head, rest = text.split("[server:main]", 1)
    app = rest.split("[app:main]", 1)[1]
    options = {
        "message_queue_url": AMQP_URL,
        "amqp_key_prefix": prefix,
        "pool_worker": "true",
        "pool_heartbeat_seconds": "2",
    }
    app = app.replace(
        "use = egg:lwr\n", "use = egg:lwr\n" + "".join(f"{k} = {v}\n" for k, v in options.items())
    )
    (directory / "server.ini").write_text(
        head + "[server:main]\nuse = egg:lwr#webless\n\n[app:main]" + app
    )
    (directory / "job_managers.ini").write_text(
        f"[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = {SLOTS}\n"
        "min_polling_interval = 0.2\n"
    )


class Burst:
    """Galaxy's MQ client manager, counting the final statuses of each job."""

    def __init__(self, prefix: str, scratch: Path) -> None:
        from pulsar.client.manager import build_client_manager

        with contextlib.redirect_stdout(io.StringIO()):
            self.manager = build_client_manager(amqp_url=AMQP_URL, amqp_key_prefix=prefix)
        self.prefix = prefix
        self.jobs_directory = scratch / "client-jobs"
        self.finals: Counter[str] = Counter()
        self.outcomes: dict[str, str] = {}
        self._done = threading.Condition()
        self.manager.ensure_has_status_update_callback(self._on_status)

    def _on_status(self, body: dict[str, Any]) -> None:
        if body.get("complete") != "true":
            return
        with self._done:
            job_id = str(body.get("job_id"))
            self.finals[job_id] += 1
            self.outcomes[job_id] = str(body.get("status"))
            self._done.notify_all()

    def run(self, tag: str, command: str, jobs: int, timeout: float = 300.0) -> float:
        """Publish ``jobs`` setups at once; seconds until every final status arrived."""
        ids = [f"{tag}-{i}" for i in range(jobs)]
        started = time.perf_counter()
        for job_id in ids:
            client = self.manager.get_client(
                {"jobs_directory": str(self.jobs_directory), "amqp_key_prefix": self.prefix},
                job_id,
            )
            client.launch(command, job_config=client.setup(tool_id="bench", tool_version="1"))
        deadline = time.monotonic() + timeout
        with self._done:
            while not all(job_id in self.outcomes for job_id in ids):
                if not self._done.wait(max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(f"burst {tag}: not every job finished in {timeout}s")
        return time.perf_counter() - started

    def close(self) -> None:
        self.manager.shutdown(ensure_cleanup=True)


def measure(
    sizes: list[int],
    jobs: int,
    sleep: float,
    only: list[str] | None = None,
    traced: bool = False,
    keep: str | None = None,
) -> dict[str, Any]:
    bursts = {"sleep": f"sleep {sleep}", "true": "true"}
    bursts = {name: command for name, command in bursts.items() if not only or name in only}
    rows: list[dict[str, Any]] = []
    for size in sizes:
        prefix = f"lwrpoolbench_{uuid.uuid4().hex[:8]}"
        scratches = (
            contextlib.nullcontext(str(Path(keep) / prefix))
            if keep
            else tempfile.TemporaryDirectory(prefix="lwr-pool-bench-")
        )
        with scratches as scratch:
            pool = Pool(Path(scratch), prefix, size, traced)
            burst = Burst(prefix, Path(scratch))
            try:
                startup = pool.start()
                for name, command in bursts.items():
                    cpu_before = pool.cpu_seconds()
                    seconds = burst.run(f"{name}{size}", command, jobs)
                    cpu = pool.cpu_seconds() - cpu_before
                    rows.append(
                        {
                            "workers": size,
                            "burst": name,
                            "jobs": jobs,
                            "seconds": round(seconds, 3),
                            "jobs_per_second": round(jobs / seconds, 2),
                            "worker_cpu_ms_per_job": round(1000 * cpu / jobs, 2),
                            "startup_seconds": round(startup, 2),
                            "load_average": load_average(),
                        }
                    )
                    if traced:
                        logs = [d / "server.log" for d in pool.directories]
                        ids = [f"{name}{size}-{i}" for i in range(jobs)]
                        rows[-1]["phases"] = pool_trace.breakdown(logs, ids)
                    time.sleep(2.5)  # a heartbeat: the per-worker counts below are settled
                rows[-1]["finished_per_worker"] = pool.finished_per_worker()
                duplicates = {k: v for k, v in burst.finals.items() if v != 1}
                failed = {k: v for k, v in burst.outcomes.items() if v != "complete"}
            finally:
                burst.close()
                pool.stop()
            _delete_queues(prefix)
        if duplicates or failed:
            return {"rows": rows, "error": {"duplicates": duplicates, "failed": failed}}
    for row in rows:
        base = next(r for r in rows if r["burst"] == row["burst"] and r["workers"] == sizes[0])
        ratio = row["jobs_per_second"] / base["jobs_per_second"]
        row["efficiency"] = round(ratio / (row["workers"] / base["workers"]), 2)
    return {"rows": rows}


def _delete_queues(prefix: str) -> None:
    import kombu

    with kombu.Connection(AMQP_URL) as connection:
        for name in ("setup", "kill", "status", "status_update", "lwr_pool_kills"):
            with contextlib.suppress(Exception):
                connection.channel().queue_delete(f"{prefix}_{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pool", description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--jobs", type=int, default=48)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--only", nargs="+", choices=["sleep", "true"], help="bursts to run")
    parser.add_argument(
        "--trace", action="store_true", help="workers log per-job marks; print where time goes"
    )
    parser.add_argument("--keep", metavar="DIR", help="leave the workers' directories in DIR")
    args = parser.parse_args(argv)
    result = measure(args.workers, args.jobs, args.sleep, args.only, args.trace, args.keep)
    result["settings"] = {"slots_per_worker": SLOTS, "broker": AMQP_URL.split("@")[-1]}
    result["cpus"] = os.cpu_count()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pool.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'workers':>7} {'burst':>6} {'jobs/s':>8} {'cpu ms/job':>10} {'efficiency':>10} "
        f"{'start s':>8} load"
    )
    for row in result["rows"]:
        print(
            f"{row['workers']:>7} {row['burst']:>6} {row['jobs_per_second']:>8} "
            f"{row['worker_cpu_ms_per_job']:>10} "
            f"{row.get('efficiency', '-'):>10} {row['startup_seconds']:>8} {row['load_average']}"
        )
        if "phases" in row:
            print(pool_trace.render(f"{row['workers']} worker(s), {row['burst']}", row["phases"]))
    if "error" in result:
        print(f"NOT exactly once: {result['error']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
