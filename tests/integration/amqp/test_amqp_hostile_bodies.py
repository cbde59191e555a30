"""Hostile message bodies on the real RabbitMQ: JSON nested thousands of levels deep (or just past
the HTTP limit, or cut short) on the setup, kill and status queues is refused cleanly — logged,
rejected without requeue — and the consumer goes on with the good messages behind it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lwr.jsondepth import MAX_JSON_DEPTH
from tests.integration.amqp.support import AMQP_URL, Client, WeblessServer, kombu, queue_depth

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

#: deep enough that decoding alone exhausts Python's recursion (kombu: undecodable)
PARSER_DEEP = 50_000
#: decodes, but nests deeper than HTTP parameters may (lwr.jsondepth: malformed)
JUST_TOO_DEEP = MAX_JSON_DEPTH + 10


def deep_list(levels: int) -> str:
    return "[" * levels + "]" * levels


def hostile_bodies(name: str) -> list[bytes]:
    """Three bad bodies for queue ``name``, each with a job id that would otherwise be valid."""
    head = f'{{"job_id": "hostile-{name}", "command_line": "echo no", "env": '
    return [
        f"{head}{deep_list(PARSER_DEEP)}}}".encode(),
        f"{head}{deep_list(JUST_TOO_DEEP)}}}".encode(),
        f"{head}[[[".encode(),  # cut short
    ]


def test_deeply_nested_and_malformed_bodies_are_refused_and_consuming_goes_on(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
) -> None:
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    client.setup("before", "echo before")
    client.wait_status("before", "complete")
    with kombu.Connection(AMQP_URL) as connection:
        producer = kombu.Producer(connection.default_channel)
        exchange = kombu.Exchange("pulsar", "direct", durable=True)
        for name in ("setup", "kill", "status"):
            for body in hostile_bodies(name):
                producer.publish(
                    body,
                    exchange=exchange,
                    routing_key=f"pulsar_{manager_name}__{name}",
                    content_type="application/json",
                    content_encoding="utf-8",
                )
    # the good messages queued behind the bad ones are still handled
    updates_before = len(client.updates)
    client.publish("status", {"job_id": "before"})  # a republished status answers it
    client.setup("after", "echo after")
    assert client.wait_status("after", "complete")["stdout"] == "after\n"
    republished = [u for u in client.updates[updates_before:] if u.get("job_id") == "before"]
    assert republished and republished[0]["status"] == "complete"
    log = server.log()
    too_deep = f"message body nests JSON deeper than {MAX_JSON_DEPTH} levels"
    assert log.count(f"rejecting undecodable message on pulsar_{manager_name}__") == 6, log
    assert log.count(f"(application/json): {too_deep}") == 3, log
    for name in ("setup", "kill", "status"):
        assert f"rejecting malformed {name} message: {too_deep}" in log, log
        assert queue_depth(manager_name, name) == 0  # rejected, not requeued
    assert not [u for u in client.updates if str(u.get("job_id", "")).startswith("hostile-")]
    assert "Traceback" not in log
