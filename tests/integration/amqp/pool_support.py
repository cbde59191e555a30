"""What the pool tests share: workers started as users start them, and an ear on the pool exchange.

A worker is ``paster serve server.ini`` with ``use = egg:lwr#webless`` and ``pool_worker = true``
in its own directory (its own job store and staging directory, as on its own machine), named by
``$LWR_POOL_WORKER_ID`` the way the balancer's local driver names the workers it starts.
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lwr.pool import protocol
from tests.integration.amqp.support import AMQP_URL, Client, WeblessServer
from tests.integration.server import free_port, write_server_ini

kombu = pytest.importorskip("kombu")


def pool_exchange() -> Any:
    return kombu.Exchange(protocol.POOL_EXCHANGE, protocol.POOL_EXCHANGE_TYPE, durable=False)


def prefix_of(manager: str) -> str:
    return f"pulsar_{manager}_"


def start_worker(
    root: Path,
    manager: str,
    worker_id: str,
    slots: int = 2,
    env: dict[str, str] | None = None,
    start: bool = True,
    **app_options: str,
) -> WeblessServer:
    """A pool worker in ``root/worker_id`` (reused when it exists: a restart on the same disk)."""
    directory = root / worker_id
    if not directory.exists():
        directory.mkdir(parents=True)
        options = {
            "message_queue_url": AMQP_URL,
            "pool_worker": "true",
            "pool_heartbeat_seconds": "0.5",
            "pool_drain_timeout": "60",
            **app_options,
        }
        path = write_server_ini(directory, free_port(), options)
        head, rest = path.read_text().split("[server:main]", 1)
        path.write_text(
            head
            + "[server:main]\nuse = egg:lwr#webless\n\n[app:main]"
            + rest.split("[app:main]", 1)[1]
        )
        (directory / "job_managers.ini").write_text(
            f"[manager:{manager}]\ntype = queued_python\nmax_concurrent_jobs = {slots}\n"
            "min_polling_interval = 0.2\n"
        )
    server = WeblessServer(directory, (manager,))
    server.env = {**os.environ, "LWR_POOL_WORKER_ID": worker_id, **(env or {})}
    return server.start() if start else server


class PoolEar:
    """Hears every load report of one pool, and sends it drain commands (as the balancer would)."""

    def __init__(self, manager: str) -> None:
        self.prefix = prefix_of(manager)
        self.reports: list[protocol.LoadReport] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "could not bind to the pool exchange"

    def _listen(self) -> None:
        exchange = pool_exchange()
        queue = kombu.Queue(
            f"test-ear-{uuid.uuid4().hex[:8]}",
            exchange,
            routing_key=protocol.load_key(self.prefix),
            exclusive=True,
            auto_delete=True,
            durable=False,
        )
        with kombu.Connection(AMQP_URL) as connection:
            with kombu.Consumer(connection, [queue], callbacks=[self._on_report], no_ack=True):
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass

    def _on_report(self, body: Any, _message: Any) -> None:
        with self._changed:
            self.reports.append(protocol.LoadReport.from_body(body))
            self._changed.notify_all()

    def latest(self, worker_id: str) -> protocol.LoadReport | None:
        with self._changed:
            mine = [r for r in self.reports if r.worker_id == worker_id]
        return mine[-1] if mine else None

    def wait(self, predicate: Any, timeout: float = 60.0, what: str = "") -> None:
        import time

        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"pool reports: timed out waiting for {what}")
                self._changed.wait(min(remaining, 0.5))

    def idle(self, *worker_ids: str) -> bool:
        """Each worker's latest report says it holds nothing."""
        reports = [self.latest(w) for w in worker_ids]
        return all(r is not None and r.jobs_held == 0 for r in reports)

    def last_words(self, worker_id: str) -> protocol.LoadReport:
        """The report a worker sent as it left (it may arrive just after the process exited)."""

        def gone() -> bool:
            report = self.latest(worker_id)
            return report is not None and report.gone

        self.wait(gone, timeout=30, what=f"{worker_id}'s last report")
        report = self.latest(worker_id)
        assert report is not None
        return report

    def drain(self, worker_id: str, timeout: float | None = None) -> None:
        exchange = pool_exchange()
        with kombu.Connection(AMQP_URL) as connection:
            kombu.Producer(connection).publish(
                protocol.DrainCommand(worker_id, timeout).to_body(),
                serializer="json",
                exchange=exchange,
                routing_key=protocol.control_key(self.prefix, worker_id),
                declare=[exchange],
            )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def finals(client: Client) -> Counter[str]:
    """How many final statuses the client received, per job."""
    with client._changed:
        return Counter(u["job_id"] for u in client.updates if u.get("complete") == "true")


def ran_on(worker: WeblessServer, manager: str, job_id: str) -> bool:
    """Whether ``worker`` committed the final status of ``job_id``."""
    return f"job {manager}/{job_id}: final status" in worker.log()


def settle(ear: PoolEar, *worker_ids: str) -> None:
    """Wait until every named worker reports holding nothing (no final status still owed)."""
    ear.wait(lambda: ear.idle(*worker_ids), what=f"{worker_ids} idle")


def long_job(pid_file: Path, seconds: int = 60) -> str:
    return f"sleep {seconds} & echo $! > {pid_file}; wait"


def pid_in(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def close_connections_of(pid: int) -> None:
    """Close, on the broker's side, every AMQP connection of process ``pid``."""
    import psutil

    ports = {
        str(c.laddr.port)
        for c in psutil.Process(pid).net_connections("tcp")
        if c.raddr and c.raddr.port == 5672
    }
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "peer_port"],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    ).stdout
    broker_pids = [
        line.split()[0]
        for line in listing.splitlines()
        if len(line.split()) == 2 and line.split()[1] in ports
    ]
    assert broker_pids, f"the broker lists no connection of {pid} (ports {ports})"
    for broker_pid in broker_pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", broker_pid, "test"],
            capture_output=True,
            timeout=60,
        )
