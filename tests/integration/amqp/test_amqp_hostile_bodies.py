"""Hostile message bodies on the real RabbitMQ: JSON nested thousands of levels deep (or just past
the HTTP limit, or cut short) on the setup, kill and status queues is refused cleanly — logged,
rejected without requeue — and the consumer goes on with the good messages behind it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from lwr.jsondepth import MAX_JSON_DEPTH
from tests.integration.amqp.private_broker import PrivateBroker
from tests.integration.amqp.support import (
    Client,
    WeblessServer,
    kombu,
    publish_raw,
    queue_depth,
)
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

#: deep enough that decoding alone exhausts Python's recursion (kombu: undecodable)
PARSER_DEEP = 50_000
#: decodes, but nests deeper than HTTP parameters may (lwr.jsondepth: malformed)
JUST_TOO_DEEP = MAX_JSON_DEPTH + 10


def deep_list(levels: int) -> str:
    return "[" * levels + "]" * levels


def hostile_bodies(name: str) -> list[tuple[bytes, str]]:
    """Three bad bodies for queue ``name``, each with a job id that would otherwise be valid."""
    head = f'{{"job_id": "hostile-{name}", "command_line": "echo no", "env": '
    bodies = [f"{head}{deep_list(PARSER_DEEP)}}}", f"{head}{deep_list(JUST_TOO_DEEP)}}}"]
    bodies.append(f"{head}[[[")  # cut short
    return [(body.encode(), "application/json") for body in bodies]


def test_deeply_nested_and_malformed_bodies_are_refused_and_consuming_goes_on(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
) -> None:
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    client.setup("before", "echo before")
    client.wait_status("before", "complete")
    for name in ("setup", "kill", "status"):
        publish_raw(f"pulsar_{manager_name}__{name}", hostile_bodies(name))
    # the good messages queued behind the bad ones are still handled
    updates_before = len(client.updates)
    client.publish("status", {"job_id": "before"})  # a republished status answers it
    client.setup("after", "echo after")
    assert client.wait_status("after", "complete")["stdout"] == "after\n"

    def republished() -> list[dict[str, object]]:
        return [u for u in client.updates[updates_before:] if u.get("job_id") == "before"]

    wait_for(republished)  # the status queue is consumed beside the setup queue, in any order
    assert republished()[0]["status"] == "complete"
    too_deep = f"message body nests JSON deeper than {MAX_JSON_DEPTH} levels"
    undecodable = f"rejecting undecodable message on pulsar_{manager_name}__"
    wait_for(lambda: server.log().count(undecodable) == 6)  # the kill queue: in its own order
    log = server.log()
    assert log.count(f"(application/json): {too_deep}") == 3, log
    for name in ("setup", "kill", "status"):
        assert f"rejecting malformed {name} message: {too_deep}" in log, log
        assert queue_depth(manager_name, name) == 0  # rejected, not requeued
    assert not [u for u in client.updates if str(u.get("job_id", "")).startswith("hostile-")]
    assert "Traceback" not in log


def test_a_dead_letter_policy_keeps_what_lwr_rejects(
    private_broker: PrivateBroker,
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
) -> None:
    """The operator's recipe of docs/security.md: a dead-letter exchange attached by policy (LWR
    cannot declare one on queues Galaxy's client declares) receives every rejected message.

    On a RabbitMQ node of the test's own: a policy on the shared broker would reconfigure it.
    """
    definition = json.dumps({"dead-letter-exchange": "lwr-dlx"})
    pattern = f"^pulsar_{manager_name}__"
    private_broker.ctl("set_policy", "lwr-dlx", pattern, definition, "--apply-to", "queues")
    with kombu.Connection(private_broker.url) as connection:
        dead = kombu.Queue("dead", kombu.Exchange("lwr-dlx", "fanout"), durable=False)
        dead(connection.default_channel).declare()
    webless_factory(manager_name, message_queue_url=private_broker.url)
    client = client_factory(manager_name, amqp_url=private_broker.url)
    sent = hostile_bodies("setup")
    publish_raw(f"pulsar_{manager_name}__setup", sent, private_broker.url)
    client.setup("after", "echo after")
    assert client.wait_status("after", "complete")["stdout"] == "after\n"
    kept = []
    with kombu.Connection(private_broker.url) as connection:
        queue = dead(connection.default_channel)
        for _ in range(len(sent)):
            message = wait_for(lambda: queue.get(no_ack=True), 10, "a dead-lettered message")
            assert message.headers["x-death"][0]["reason"] == "rejected"
            kept.append(message.body.encode() if isinstance(message.body, str) else message.body)
    assert sorted(kept) == sorted(body for body, _ in sent)
