"""Smoke: three pool workers share one manager's jobs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.amqp.support import Client, WeblessServer

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def test_burst(manager_name: str, webless_factory: Callable[..., WeblessServer],
               client_factory: Callable[..., Client]) -> None:
    workers = [webless_factory(manager_name, pool_worker="true", pool_worker_id=f"w{i}")
               for i in range(3)]
    client = client_factory(manager_name)
    for i in range(12):
        client.setup(f"j{i}", f"sleep 1; echo out {i}")
    for i in range(12):
        assert client.wait_status(f"j{i}", "complete")["stdout"] == f"out {i}\n"
    for w in workers:
        print(w.log().count("final status complete published"))
