"""The balancer's broker side on the real RabbitMQ: the backlog read, the queues declared for jobs
and kills published while the pool is empty, drain commands on a worker's control key, load
reports."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import kombu
import pytest

from lwr.balancer.broker import PoolBroker
from lwr.config import AmqpConfig
from lwr.messaging.exchange import AmqpExchange, key_prefix
from lwr.pool.protocol import POOL_EXCHANGE, DrainCommand, LoadReport, control_key, load_key
from tests.integration.amqp.support import AMQP_URL, Client, queue_depth

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq, pytest.mark.timeout(60)]


def test_jobs_published_before_any_worker_wait_in_the_declared_queue(
    manager_name: str, client_factory: Callable[..., Client]
) -> None:
    prefix = key_prefix(manager_name, None)
    broker = PoolBroker(AMQP_URL, prefix)
    assert broker.waiting(f"{prefix}_setup") == 0  # absent: declared, as the client would
    client = client_factory(manager_name)
    for i in range(3):
        client.setup(f"j{i}", "true")
    assert broker.waiting(f"{prefix}_setup") == 3 == queue_depth(manager_name, "setup")


def test_a_kill_published_before_any_worker_waits_in_the_kept_queue(
    manager_name: str, client_factory: Callable[..., Client]
) -> None:
    """The kill queue the balancer declares is the one a worker declares (same arguments: the
    broker would refuse the worker's declaration otherwise) and keeps Galaxy's kill for it."""
    prefix = key_prefix(manager_name, None)
    broker = PoolBroker(AMQP_URL, prefix)
    broker.keep(f"{prefix}_kill")
    client_factory(manager_name).publish("kill", {"job_id": "early"})
    assert queue_depth(manager_name, "kill") == 1
    broker.keep(f"{prefix}_kill")  # an existing queue is left as it is
    worker = AmqpExchange(AMQP_URL, manager_name, AmqpConfig())
    with worker.connection() as connection:
        worker.queue("kill")(connection.default_channel).declare()  # refused if it differed
    assert queue_depth(manager_name, "kill") == 1


def test_drain_reaches_the_control_key_and_reports_are_heard(manager_name: str) -> None:
    prefix = key_prefix(manager_name, None)
    broker = PoolBroker(AMQP_URL, prefix).start()
    exchange = kombu.Exchange(POOL_EXCHANGE, "topic", durable=False)
    name = f"test-{uuid.uuid4().hex[:8]}"
    with kombu.Connection(AMQP_URL) as connection:
        queue = kombu.Queue(
            name, exchange, routing_key=control_key(prefix, "w1"), exclusive=True, auto_delete=True
        )(connection.default_channel)
        queue.declare()
        broker.drain("w1", 12.5)
        message = None
        for _ in range(50):
            message = queue.get(no_ack=True)
            if message:
                break
            time.sleep(0.1)
        assert message is not None
        assert DrainCommand.from_body(message.decode()) == DrainCommand("w1", 12.5)
        assert broker.connected.wait(10)
        report = LoadReport("w1", manager_name, "h", 1, 2, 1, False, 7, 6, time.time())
        kombu.Producer(connection.default_channel).publish(
            report.to_body(),
            exchange=exchange,
            routing_key=load_key(prefix),
            serializer="json",
            declare=[exchange],
        )
        for _ in range(50):
            if "w1" in broker.heard():
                break
            time.sleep(0.1)
    broker.stop()
    assert broker.heard()["w1"].report == report
