"""Message-queue mode: the same trivial job through AMQP, LWR against Pulsar 0.16.

In MQ mode there is no HTTP at all: the client publishes a ``setup`` message (job description
and command line) and learns the outcome from ``status_update`` messages; files would move by
server-side staging, which needs a Galaxy to fetch from, so only a job without files (``true``)
is timed, from publishing the setup to receiving the final status.

Both servers get their own queue-name prefix (``amqp_key_prefix``), unique per run, so they never
take each other's messages, nor those of anything else using the same broker. When the broker,
kombu or ``lwr/messaging/`` is missing, the result document says "not measured: MQ mode not
available" with the reason, and the run goes on.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.client import TOOL_ID, TOOL_VERSION, JobFailed
from bench.measure import Failures, load_average, percentile
from bench.servers import BenchServer, LwrBench, PulsarBench

AMQP_URL = os.environ.get("LWR_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
_MESSAGING = Path(__file__).resolve().parents[1] / "lwr" / "messaging"
_FINAL = {"complete", "failed", "lost", "cancelled"}


def not_available(url: str = AMQP_URL) -> str | None:
    """Why MQ mode cannot be measured here, or None when it can."""
    if not (_MESSAGING / "__init__.py").exists():
        return "lwr/messaging/ does not exist"
    try:
        import kombu  # noqa: F401

        from lwr.messaging import build_binding  # noqa: F401
    except ImportError as exc:
        return f"cannot import the AMQP pieces: {exc}"
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 2).close()
    except OSError as exc:
        return f"no AMQP broker at {parts.hostname}:{parts.port or 5672} ({exc})"
    return None


def skipped(reason: str) -> dict[str, Any]:
    return {
        "measured": False,
        "note": "not measured: MQ mode not available",
        "reason": reason,
        "how": "set LWR_BENCH_AMQP_URL to a RabbitMQ (default amqp://guest:guest@127.0.0.1:5672//)",
    }


class MqDriver:
    """A ``pulsar.client`` message-queue client manager for one server's queue prefix."""

    def __init__(self, url: str, prefix: str, jobs_directory: Path, timeout: float) -> None:
        from pulsar.client.manager import build_client_manager

        with contextlib.redirect_stdout(io.StringIO()):
            self.manager = build_client_manager(amqp_url=url, amqp_key_prefix=prefix)
        self.prefix = prefix
        self.jobs_directory = jobs_directory
        self.timeout = timeout
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}
        self._final: dict[str, dict[str, Any]] = {}
        self.manager.ensure_has_status_update_callback(self._on_status)

    def _on_status(self, body: dict[str, Any]) -> None:
        if body.get("status") not in _FINAL:
            return
        with self._lock:
            self._final[str(body.get("job_id"))] = body
            event = self._waiting.get(str(body.get("job_id")))
        if event is not None:
            event.set()

    def run(self, job_id: str) -> float:
        """Publish one ``true`` job; seconds until its final status message arrived."""
        event = threading.Event()
        with self._lock:
            self._waiting[job_id] = event
        started = time.perf_counter()
        client = self.manager.get_client(
            {"jobs_directory": str(self.jobs_directory), "amqp_key_prefix": self.prefix}, job_id
        )
        job_config = client.setup(tool_id=TOOL_ID, tool_version=TOOL_VERSION)
        client.launch("true", job_config=job_config)
        if not event.wait(self.timeout):
            raise JobFailed(f"no final status for MQ job {job_id} in {self.timeout}s")
        elapsed = time.perf_counter() - started
        with self._lock:
            body = self._final.pop(job_id)
            del self._waiting[job_id]
        if body.get("status") != "complete" or str(body.get("returncode", 0)) != "0":
            raise JobFailed(f"MQ job {job_id} ended {body.get('status')!r}: {body!r}"[:400])
        return elapsed

    def burst(self, job_ids: list[str], timeout: float) -> dict[str, Any]:
        """Publish a ``true`` job for every id at once; seconds from the first publish until
        the last final status, and how many ended ``complete``."""
        events = {job_id: threading.Event() for job_id in job_ids}
        with self._lock:
            self._waiting.update(events)
        started = time.perf_counter()
        for job_id in job_ids:
            client = self.manager.get_client(
                {"jobs_directory": str(self.jobs_directory), "amqp_key_prefix": self.prefix},
                job_id,
            )
            client.launch(
                "true", job_config=client.setup(tool_id=TOOL_ID, tool_version=TOOL_VERSION)
            )
        published = time.perf_counter() - started
        deadline = time.monotonic() + timeout
        for event in events.values():
            event.wait(max(0.0, deadline - time.monotonic()))
        elapsed = time.perf_counter() - started
        with self._lock:
            bodies = [self._final.pop(job_id, None) for job_id in job_ids]
            for job_id in job_ids:
                self._waiting.pop(job_id, None)
        complete = sum(
            1
            for body in bodies
            if body is not None
            and body.get("status") == "complete"
            and str(body.get("returncode", 0)) == "0"
        )
        return {
            "jobs": len(job_ids),
            "complete": complete,
            "publish_s": round(published, 3),
            "seconds": round(elapsed, 3),
            "jobs_per_s": round(complete / elapsed, 2),
        }

    def close(self) -> None:
        self.manager.shutdown(ensure_cleanup=True)


def measure(
    jobs: int, concurrency: int, scratch: Path, failures: Failures, burst: int = 0
) -> dict[str, Any]:
    """Latency of ``jobs`` trivial MQ jobs per server, alternating, then the throughput of a
    ``burst`` of them published at once, server after server; or why it was skipped."""
    reason = not_available()
    if reason is not None:
        return skipped(reason)
    token = uuid.uuid4().hex[:8]
    prefixes = {name: f"lwrbench_{token}_{name}" for name in ("lwr", "pulsar")}

    def options(name: str) -> dict[str, str]:
        return {"message_queue_url": AMQP_URL, "amqp_key_prefix": prefixes[name]}

    servers: dict[str, BenchServer] = {
        "lwr": LwrBench(scratch / "mq-lwr", concurrency, options("lwr")),
        "pulsar": PulsarBench(scratch / "mq-pulsar", concurrency, options("pulsar")),
    }
    # Where each server puts job directories: the client names them in its setup message.
    jobs_dirs = {
        "lwr": scratch / "mq-lwr" / "files" / "staging" / "_default_",
        "pulsar": scratch / "mq-pulsar" / "files" / "staging",
    }
    drivers: dict[str, MqDriver] = {}
    times: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for name, server in servers.items():
            server.configure()
            server.start()
            wait_for_queue(AMQP_URL, f"{prefixes[name]}_setup")
            drivers[name] = MqDriver(AMQP_URL, prefixes[name], jobs_dirs[name], timeout=60)
        for index in range(jobs):
            for name, driver in drivers.items():
                try:
                    times[name].append(driver.run(f"mq{index}"))
                except Exception as exc:
                    failures.add(name, f"MQ job {index}", exc)
        bursts = _bursts(drivers, burst, failures)
    finally:
        for driver in drivers.values():
            driver.close()
        for server in servers.values():
            server.stop()
    return {
        "measured": True,
        "broker": _redacted(AMQP_URL),
        "job": "true, no files",
        **{name: {**_summary(values), **bursts.get(name, {})} for name, values in times.items()},
    }


def wait_for_queue(url: str, queue: str, timeout: float = 60.0) -> None:
    """Wait until the server has declared its setup queue.

    The client declares only the exchange when it publishes, so a setup published before the
    server's consumer has declared and bound its queue is dropped by the broker: under load a
    server can answer ``/healthz`` before its consumer thread got that far.
    """
    import kombu

    deadline = time.monotonic() + timeout
    with kombu.Connection(url) as connection:
        while True:
            channel = connection.channel()
            try:
                channel.queue_declare(queue=queue, passive=True)
                return
            except connection.channel_errors:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server declared no queue {queue} in {timeout}s"
                    ) from None
                time.sleep(0.05)
            finally:
                try:
                    channel.close()
                except connection.channel_errors + connection.connection_errors:
                    pass


def _bursts(drivers: dict[str, MqDriver], jobs: int, failures: Failures) -> dict[str, Any]:
    """``jobs`` published at once to each server in turn: jobs per second through the broker."""
    out: dict[str, Any] = {}
    if jobs <= 0:
        return out
    for name, driver in drivers.items():
        print(f"  MQ burst of {jobs} jobs: {name}", flush=True)
        try:
            result = driver.burst(
                [f"burst{i}" for i in range(jobs)], timeout=max(120.0, 3.0 * jobs)
            )
        except Exception as exc:
            failures.add(name, "MQ burst", exc)
            continue
        result["load_average"] = load_average()
        missing = result["jobs"] - result["complete"]
        if missing:
            failures.add(name, "MQ burst", JobFailed(f"{missing} of {jobs} jobs did not complete"))
        out[name] = result
    return {name: {"burst": result} for name, result in out.items()}


def _summary(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"n": 0}
    return {
        "n": len(seconds),
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "p90_ms": round(percentile(seconds, 0.9) * 1000, 2),
    }


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(parts.password, "***") if parts.password else url
