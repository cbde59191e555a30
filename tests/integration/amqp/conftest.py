"""Fixtures of the message-queue integration tests: fresh manager names, servers, clients."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.integration.amqp.pool_support import PoolEar, start_worker
from tests.integration.amqp.private_broker import PrivateBroker
from tests.integration.amqp.private_broker import available as private_broker_available
from tests.integration.amqp.support import (
    AMQP_URL,
    Client,
    WeblessServer,
    broker_up,
    delete_queues,
)
from tests.integration.balancer.site import BalancerSite
from tests.integration.server import free_port, write_server_ini

kombu = pytest.importorskip("kombu")
from kombu import pools  # noqa: E402 - only once kombu is known to be there


@pytest.fixture
def manager_name() -> Iterator[str]:
    """A fresh manager name; its queues are deleted from the broker after the test.

    Request it before any server fixture: it is then torn down after the servers stopped, which
    would otherwise declare the deleted queues again.
    """
    require_service(broker_up(), "RabbitMQ is not reachable at 127.0.0.1:5672")
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    delete_queues(name)


@pytest.fixture
def another_manager_name(manager_name: str) -> Iterator[str]:
    """A second fresh manager name, for tests with two servers."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    delete_queues(name)


@pytest.fixture
def webless_factory(tmp_path: Path) -> Iterator[Callable[..., WeblessServer]]:
    servers: list[WeblessServer] = []

    def factory(*managers: str, start: bool = True, **app_options: str) -> WeblessServer:
        directory = tmp_path / f"webless{len(servers)}"
        directory.mkdir()
        options = {"message_queue_url": AMQP_URL, **app_options}
        path = write_server_ini(directory, free_port(), options)
        text = path.read_text()
        head, rest = text.split("[server:main]", 1)
        path.write_text(
            head
            + "[server:main]\nuse = egg:lwr#webless\n\n[app:main]"
            + rest.split("[app:main]", 1)[1]
        )
        (directory / "job_managers.ini").write_text(
            "".join(
                f"[manager:{m}]\ntype = queued_python\nmax_concurrent_jobs = 2\n"
                f"min_polling_interval = 0.2\n\n"
                for m in managers
            )
        )
        server = WeblessServer(directory, managers)
        servers.append(server)
        return server.start() if start else server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def client_factory() -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def factory(manager: str, **options: Any) -> Client:
        client = Client(manager, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A RabbitMQ node of the test's own, to stop and start without touching the shared one.

    Request it before the server and client fixtures, so it outlives them.
    """
    require_service(private_broker_available(), "RabbitMQ's scripts are not installed")
    broker = PrivateBroker(tmp_path / "rabbitmq").start()
    yield broker
    broker.stop()
    pools.reset()  # the client's pooled connections died with the broker


@pytest.fixture
def workers(tmp_path: Path, manager_name: str) -> Iterator[Callable[..., WeblessServer]]:
    """Start pool workers (lwr.pool) of this test's manager; each stopped with SIGINT at the end."""
    started: list[WeblessServer] = []

    def start(worker_id: str, **options: object) -> WeblessServer:
        server = start_worker(tmp_path / "workers", manager_name, worker_id, **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
            server.process.wait(20)


@pytest.fixture
def ear(manager_name: str) -> Iterator[PoolEar]:
    """Hears the load reports of this test's pool and sends it drain commands."""
    ear = PoolEar(manager_name)
    yield ear
    ear.close()


@pytest.fixture
def site(tmp_path: Path, manager_name: str) -> Iterator[BalancerSite]:
    """A balancer site (worker template, balancer.ini) under the test's temp dir; whatever it
    left running is killed and its queues deleted afterwards."""
    site = BalancerSite(tmp_path / "site")
    yield site
    site.cleanup()
    delete_queues(site.manager)
