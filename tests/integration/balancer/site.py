"""A balancer site for tests and the bench: worker template, balancer.ini, the balancer process
started as a user starts it (``lwr balancer --background``), and readers of what it writes.

Workers are real LWR pool workers (webless, message-queue mode) on the real RabbitMQ; the manager
name is fresh per site so nothing collides with other tests.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tests.integration.amqp.pool_support import start_worker
from tests.integration.amqp.support import Client
from tests.integration.server import free_port

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
BIN = Path(sys.executable).parent
#: a load table for bursts: the idle row keeps one worker, a burst fills up to four
TABLE = "0    1 1\n0.5  1 4\n3    2 4\n"


class BalancerSite:
    def __init__(
        self,
        directory: Path,
        poll_interval: float = 0.05,
        table: str = TABLE,
        slots: int = 2,
        bin_dir: Path = BIN,
        signal: str = "rate",
    ) -> None:
        self.directory = directory
        #: where ``lwr`` is; the local driver starts the ``lwr`` beside the balancer's Python
        self.bin_dir = bin_dir
        self.manager = f"b{uuid.uuid4().hex[:10]}"
        self.name = f"t{uuid.uuid4().hex[:8]}"
        self.metrics_port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self._write_template(slots)
        (directory / "balancer.ini").write_text(
            f"[balancer]\nmanager = {self.manager}\nmessage_queue_url = {AMQP_URL}\n"
            f"poll_interval = {poll_interval}\nname = {self.name}\ndrain_timeout = 60\n"
            f"metrics_port = {self.metrics_port}\nsignal = {signal}\n\n[load table]\n{table}\n"
            "[driver:local]\nworker_template = worker\n"
        )
        self.state = directory / "balancer-state"
        self.pidfile = directory / "balancer.pid"
        self.logfile = directory / "balancer.log"

    def _write_template(self, slots: int) -> None:
        """The worker template: exactly the pool tests' worker directory (webless, pool_worker,
        ``slots`` concurrent jobs), written but not started."""
        start_worker(self.directory, self.manager, "worker", slots=slots, start=False)
        (self.directory / "worker" / "server.log").unlink(missing_ok=True)

    # -- the balancer process -----------------------------------------------------------------

    def command(self, *extra: str) -> list[str]:
        return [
            str(self.bin_dir / "lwr"),
            "balancer",
            "--conf",
            "balancer.ini",
            "--pidfile",
            str(self.pidfile),
            "--logfile",
            str(self.logfile),
            "--verbosity",
            "2",
            *extra,
        ]

    def start(self, *extra: str) -> int:
        """``lwr balancer --background``; the daemon's pid once it wrote its status."""
        self.pidfile.unlink(missing_ok=True)
        subprocess.run(self.command("--background", *extra), cwd=self.directory, check=True)
        wait_for(
            lambda: (
                self.pid() is not None
                and self.status().get("state") == "running"
                and self.status().get("pid") == self.pid()
            ),
            30,
            self.log,
        )
        pid = self.pid()
        assert pid is not None
        return pid

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def kill9(self) -> None:
        pid = self.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _running(pid), 10)

    def stop(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command("--kill"), cwd=self.directory, text=True, capture_output=True, timeout=120
        )

    def status_command(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command("--status"), cwd=self.directory, text=True, capture_output=True, timeout=30
        )

    # -- what it writes -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.state / "status.json").read_text()))
        except (OSError, ValueError):
            return {}

    def history(self) -> list[dict[str, Any]]:
        path = self.state / "decisions.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def workers(self) -> list[psutil.Process]:
        """Live worker processes: ``lwr serve`` running in a worker directory of this site (the
        jobs they run have working directories further down)."""
        root = self.state / "workers"
        found = []
        for process in psutil.process_iter(["cwd", "status", "cmdline"]):
            cwd, argv = process.info.get("cwd"), process.info.get("cmdline") or []
            if cwd and Path(cwd).parent == root and "serve" in argv:
                if process.info["status"] != psutil.STATUS_ZOMBIE:
                    found.append(process)
        return found

    def records(self) -> list[str]:
        root = self.state / "workers"
        return sorted(p.parent.name for p in root.glob("*/worker.json")) if root.exists() else []

    def cleanup(self) -> None:
        """Kill whatever is left (a failed test must not leak processes)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        root = str(self.state / "workers")
        for process in psutil.process_iter(["cwd"]):
            if (process.info.get("cwd") or "").startswith(root):
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass


def check_exactly_once(client: Client, expected: dict[str, str]) -> None:
    """Every job completed with its output, and exactly one final status was sent for each."""
    for job_id, output in expected.items():
        assert client.wait_status(job_id, "complete", timeout=180)["stdout"] == output
    finals = collections.Counter(
        u["job_id"]
        for u in client.updates
        if u.get("job_id") in expected
        and u.get("status") in ("complete", "failed", "lost", "cancelled")
    )
    assert finals == dict.fromkeys(expected, 1)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(
    predicate: Callable[[], bool], timeout: float, context: Callable[[], str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s" + (f":\n{context()[-4000:]}" if context else ""))
