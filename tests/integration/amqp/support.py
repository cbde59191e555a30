"""What the message-queue integration tests share: LWR without HTTP, Galaxy's MQ client, helpers.

The broker is the real RabbitMQ at 127.0.0.1:5672. Every test binds LWR and the client to
managers with fresh names (see ``conftest.py``), so tests never see each other's queues.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.server import LwrServer, free_port

kombu = pytest.importorskip("kombu")

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
QUEUE_NAMES = ("setup", "kill", "status", "status_update", "setup_ack", "kill_ack")
QUEUE_NAMES += ("status_update_ack",)
#: the pool's kill ledger (lwr.pool.kill_ledger), a stream named after the same prefix
QUEUE_NAMES += ("lwr_pool_kills",)


def broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


def delete_queues(name: str) -> None:
    with kombu.Connection(AMQP_URL) as connection:
        channel = connection.channel()
        for queue in QUEUE_NAMES:
            try:
                channel.queue_delete(f"pulsar_{name}__{queue}")
            except Exception:  # absent queue: the channel closes; open a new one
                channel = connection.channel()


# -- LWR without HTTP ------------------------------------------------------------------------------


class WeblessServer(LwrServer):
    """LWR started from a server.ini whose ``[server:main]`` is ``use = egg:lwr#webless``."""

    def __init__(self, directory: Path, managers: tuple[str, ...]) -> None:
        super().__init__(directory, free_port())
        self.managers = managers
        self._log_offset = 0

    def start(self, timeout: float = 30.0) -> WeblessServer:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Ready once every manager consumes (no HTTP to ask); fail if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"LWR exited with {self.process.returncode}:\n{self.log()}")
            recent = self.log()[self._log_offset :]
            if all(f"manager {m}: consuming" in recent for m in self.managers):
                return
            time.sleep(0.1)
        raise RuntimeError(f"LWR did not start consuming in {timeout}s:\n{self.log()}")

    def jobs_directory(self, manager: str) -> Path:
        """Pulsar's layout: the default manager's jobs directly in the staging directory."""
        staging = self.directory / "files" / "staging"
        return staging if manager == "_default_" else staging / manager


# -- the client side -------------------------------------------------------------------------------


class Client:
    """Galaxy's message-queue client manager for one manager, recording every status update."""

    def __init__(self, manager: str, amqp_url: str = AMQP_URL, **options: Any) -> None:
        from pulsar.client.manager import build_client_manager

        self.manager = build_client_manager(amqp_url=amqp_url, manager=manager, **options)
        self.updates: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self.manager.ensure_has_status_update_callback(self._on_update)

    def _on_update(self, body: dict[str, Any]) -> None:
        with self._changed:
            self.updates.append(body)
            self._changed.notify_all()

    def publish(self, name: str, body: dict[str, Any]) -> None:
        """Publish as the client does (which adds the acknowledgement keys to ``body``)."""
        self.manager.exchange.publish(name, body)

    def setup(self, job_id: str, command_line: str, **extra: Any) -> dict[str, Any]:
        body = {
            "job_id": job_id,
            "command_line": command_line,
            "setup_params": {"job_id": job_id, "tool_id": "cat1", "tool_version": "1.0"},
            **extra,
        }
        self.publish("setup", body)
        return body

    def statuses(self, job_id: str) -> list[str]:
        with self._changed:
            return [u["status"] for u in self.updates if u.get("job_id") == job_id]

    def wait_status(self, job_id: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for update in self.updates:
                    if update.get("job_id") == job_id and update.get("status") == status:
                        return update
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(u.get("job_id"), u.get("status")) for u in self.updates]
                    raise AssertionError(f"no {status!r} for {job_id} in {timeout}s; saw {seen}")
                self._changed.wait(remaining)

    def close(self) -> None:
        self.manager.shutdown(ensure_cleanup=True)


def publish_raw(
    routing_key: str, bodies: list[tuple[bytes, str]], amqp_url: str = AMQP_URL
) -> None:
    """Publish ``(body, content type)`` pairs as they are, bypassing any client's encoding."""
    with kombu.Connection(amqp_url) as connection:
        producer = kombu.Producer(connection.default_channel)
        exchange = kombu.Exchange("pulsar", "direct", durable=True)
        for body, content_type in bodies:
            producer.publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                content_type=content_type,
                content_encoding="utf-8",
            )


def queue_depth(manager: str, name: str) -> int:
    with kombu.Connection(AMQP_URL) as connection:
        _, count, _ = connection.channel().queue_declare(f"pulsar_{manager}__{name}", passive=True)
        return int(count)


def outbox_rows(server: LwrServer, table: str = "outbox") -> int:
    """Rows of one table of the server's outbox (``early_kills``: kills before their setup)."""
    import sqlite3

    path = server.directory / "files" / "persisted_data" / "outbox.sqlite3"
    with sqlite3.connect(path) as db:
        (count,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return int(count)


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
