"""``python -m bench.load``: a shared LWR under Locust's users (bench/locustfile.py), headless.

Starts a real LWR as its users start it (``paster serve server.ini`` from the shipped sample, in
a fresh directory, on a free port, with an admin ``private_token``), creates one service user
per Locust user through the admin route, runs Locust headless for a bounded time, samples the
server's resident memory (server and every child) while it runs, and prints and writes p50/p95
latency, requests per second and failures per request type, with the load average. Exits 1 when
any request failed or Locust did not finish cleanly; timings never fail it.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.locust_ui import TOOL, TOOL_TEMPLATE
from bench.servers import LwrBench

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
LOCUSTFILE = BENCH_DIR / "locustfile.py"


class LoadServer(LwrBench):
    """LWR from the sample with an admin token, ``threads`` worker threads and the dashboard's
    tool the browser users run (``ui_tools``)."""

    def __init__(self, directory: Path, concurrency: int, threads: int) -> None:
        self.admin_token = secrets.token_urlsafe(24)
        options = {"private_token": self.admin_token, "ui_tools": f"\n    {TOOL} = {TOOL_TEMPLATE}"}
        super().__init__(directory, concurrency, options)
        self.threads = threads

    def configure(self) -> None:
        super().configure()
        ini = self.directory / "server.ini"
        text, count = re.subn(
            r"^threads = \d+$", f"threads = {self.threads}", ini.read_text(), count=1, flags=re.M
        )
        if not count:
            raise RuntimeError("no 'threads =' line in the generated server.ini")
        ini.write_text(text)

    def add_user(self, name: str) -> str:
        """``POST /users?name=`` with the admin token; the new user's token."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(
                "POST",
                f"/users?name={name}",
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"POST /users?name={name}: {response.status} {body[:300]!r}")
        return str(json.loads(body)["token"])


class RssSampler(threading.Thread):
    """The server's RSS every ``every`` seconds until stopped.

    Each sample is (seconds since start, bytes of the server and all its children, bytes of the
    server process alone). The first includes the jobs' processes, and a job's child is for a
    moment a fork of the server (its whole RSS, until it execs), so that series spikes; the
    second is what the server itself holds, the one that shows whether memory stays bounded.
    """

    def __init__(self, server: LoadServer, every: float) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.every = every
        self.samples: list[tuple[float, int, int]] = []
        self.halt = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.sample()

    def sample(self) -> int:
        rss = self.server.rss_bytes()
        alone = psutil.Process(self.server.pid).memory_info().rss
        self.samples.append((round(time.monotonic() - self.started_at, 1), rss, alone))
        return rss


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--users", "-u", type=int, default=50, help="Locust users (default 50)")
    parser.add_argument(
        "--spawn-rate", "-r", type=float, default=10.0, help="users started per second (default 10)"
    )
    parser.add_argument("--time", "-t", type=int, default=120, help="seconds of load (default 120)")
    parser.add_argument(
        "--threads",
        type=int,
        default=16,
        help="the server's worker threads, [server:main] threads (default 16)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="the manager's max_concurrent_jobs (default 4)"
    )
    parser.add_argument(
        "--ui-share",
        type=float,
        default=1 / 3,
        help="share of users on the web dashboard rather than the API, 0 to 0.99 (default 1/3)",
    )
    parser.add_argument(
        "--sample-every", type=float, default=10.0, help="seconds between RSS samples (default 10)"
    )
    parser.add_argument("--out", type=Path, help="JSON result (default bench/results/load-U.json)")
    parser.add_argument("--workdir", type=Path, help="keep the server directory here")
    return parser.parse_args(argv)


def run_locust(server: LoadServer, args: argparse.Namespace, tokens: Path, work: Path) -> int:
    """Locust headless against the server; its output goes to ``work/locust.log``."""
    env = dict(
        os.environ,
        LWR_LOAD_TOKENS_FILE=str(tokens),
        LWR_LOAD_JOBS_OUT=str(work / "jobs.json"),
        LWR_LOAD_UI_SHARE=str(args.ui_share),
        # the locustfile imports bench.locust_ui, wherever Locust is started from
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(BENCH_DIR.parent), os.environ.get("PYTHONPATH")])
        ),
    )
    env.pop("LWR_LOAD_ADMIN_TOKEN", None)
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.spawn_rate),
        "-t",
        f"{args.time}s",
        "--host",
        server.url.rstrip("/"),
        "--csv",
        str(work / "locust"),
        "--only-summary",
        "--stop-timeout",
        "30",
        "--loglevel",
        "WARNING",
    ]
    with open(work / "locust.log", "wb") as log:
        return subprocess.run(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=args.time + 180
        ).returncode


def read_stats(work: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Locust's CSV: one row per request type (and ``Aggregated``), and the failures."""
    rows: list[dict[str, Any]] = []
    if not (work / "locust_stats.csv").exists():  # Locust never got going: see its log
        return rows, []
    with open(work / "locust_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append(
                {
                    "type": row["Type"],
                    "name": row["Name"],
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "p50_ms": _number(row["50%"]),
                    "p95_ms": _number(row["95%"]),
                    "max_ms": _number(row["Max Response Time"]),
                    "rps": float(row["Requests/s"]),
                }
            )
    failures = []
    path = work / "locust_failures.csv"
    if path.exists():
        with open(path, newline="") as handle:
            failures = [
                {
                    "method": r["Method"],
                    "name": r["Name"],
                    "error": r["Error"],
                    "occurrences": int(r["Occurrences"]),
                }
                for r in csv.DictReader(handle)
            ]
    return rows, failures


def _jobs(work: Path) -> dict[str, Any]:
    """The job round trips the locustfile wrote when it quit (none if it never got there)."""
    path = work / "jobs.json"
    return dict(json.loads(path.read_text())) if path.exists() else {"jobs": 0}


def _tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


def _number(text: str) -> float | None:
    return None if text in ("", "N/A") else float(text)


def load_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Start the server, make the users, run Locust, stop the server; everything measured."""
    server = LoadServer(work / "server", args.concurrency, args.threads)
    server.configure()
    server.start()
    try:
        tokens = work / "tokens.txt"
        tokens.write_text("".join(server.add_user(f"load{i}") + "\n" for i in range(args.users)))
        sampler = RssSampler(server, args.sample_every)
        rss_start, load_start = sampler.sample(), os.getloadavg()
        sampler.start()
        code = run_locust(server, args, tokens, work)
        sampler.halt.set()
        sampler.join()
        rss_end, load_end = sampler.sample(), os.getloadavg()
        tracebacks = server.log_path.read_text(errors="replace").count("Traceback")
    finally:
        server.stop()
    rows, failures = read_stats(work)
    return {
        "settings": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
        },
        "locust_exit": code,
        "server_tracebacks": tracebacks,
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "rss_start": rss_start,
        "rss_end": rss_end,
        "rss_max": max(rss for _, rss, _ in sampler.samples),
        "rss_server_start": sampler.samples[0][2],
        "rss_server_end": sampler.samples[-1][2],
        "rss_server_max": max(alone for _, _, alone in sampler.samples),
        "rss_samples": sampler.samples,
        "stats": rows,
        "jobs": _jobs(work),
        "failures": failures,
        "cpus": os.cpu_count(),
        "locust_log_tail": _tail(work / "locust.log") if code else "",
        # Locust warns when its own process saturates a core: then it, not LWR, set the pace
        "locust_cpu_warning": "CPU usage" in _tail(work / "locust.log", 100_000),
        "server_log_tail": server.log() if tracebacks else "",
    }


def report(result: dict[str, Any]) -> str:
    """The table printed at the end of a run."""
    mib = 1024 * 1024
    lines = [
        f"users {result['settings']['users']}, {result['settings']['time']} s, "
        f"server threads {result['settings']['threads']}, "
        f"dashboard share {result['settings'].get('ui_share', 0):.2f}, load average "
        f"{result['loadavg_start'][0]} -> {result['loadavg_end'][0]} ({result['cpus']} CPUs)",
        "Locust warned that its own CPU was saturated" if result["locust_cpu_warning"] else "",
        f"server RSS {result['rss_start'] / mib:.1f} MiB at start, "
        f"{result['rss_end'] / mib:.1f} MiB at end, {result['rss_max'] / mib:.1f} MiB max "
        f"(with its jobs); the server process alone {result['rss_server_start'] / mib:.1f}, "
        f"{result['rss_server_end'] / mib:.1f}, {result['rss_server_max'] / mib:.1f} MiB max",
        f"{'request':<40} {'count':>7} {'fail':>5} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7}",
    ]
    for row in result["stats"]:
        name = f"{row['type']} {row['name']}".strip()
        lines.append(
            f"{name:<40} {row['requests']:>7} {row['failures']:>5} {_ms(row['p50_ms']):>8} "
            f"{_ms(row['p95_ms']):>8} {row['rps']:>7.1f}"
        )
    jobs = result["jobs"]
    lines.append(
        f"{'jobs, setup to checked download':<40} {jobs['jobs']:>7} {'':>5} "
        f"{_ms(jobs.get('p50_ms')):>8} {_ms(jobs.get('p95_ms')):>8}"
    )
    for failure in result["failures"]:
        lines.append(
            f"FAILED {failure['occurrences']}x {failure['method']} {failure['name']}: "
            f"{failure['error'][:200]}"
        )
    return "\n".join(line for line in lines if line)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or RESULTS / f"load-{args.users}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.workdir:
        if args.workdir.exists() and any(args.workdir.iterdir()):
            raise SystemExit(f"--workdir {args.workdir} is not empty: every run needs a fresh one")
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = load_run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="lwr-load-") as tmp:
            result = load_run(args, Path(tmp))
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(report(result))
    if result["locust_log_tail"]:
        print(f"Locust exited with {result['locust_exit']}:\n{result['locust_log_tail']}")
    print(f"written to {out}")
    failed = sum(row["failures"] for row in result["stats"] if row["name"] != "Aggregated")
    return 1 if failed or result["locust_exit"] != 0 or not result["stats"] else 0


if __name__ == "__main__":
    sys.exit(main())
