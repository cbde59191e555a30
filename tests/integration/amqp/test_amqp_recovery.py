"""LWR over a real RabbitMQ when things go wrong: broker restarts, LWR restarts, bad messages,
redeliveries and acknowledgements."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.amqp.private_broker import PrivateBroker
from tests.integration.amqp.support import (
    AMQP_URL,
    Client,
    WeblessServer,
    broker_up,
    kombu,
    outbox_rows,
    publish_raw,
    queue_depth,
)
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


# -- (d) the broker restarts in the middle of a job ------------------------------------------------


def test_broker_restart_mid_job(
    private_broker: PrivateBroker,
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name, message_queue_url=private_broker.url)
    # Galaxy's publisher reuses pooled connections: it needs its retry to survive the restart
    client = client_factory(manager_name, amqp_url=private_broker.url, amqp_publish_retry=True)
    gate = tmp_path / "gate"
    client.setup("through-outage", f"while [ ! -e {gate} ]; do sleep 0.1; done; echo survived")
    client.wait_status("through-outage", "running")
    private_broker.ctl("stop_app")
    assert broker_up()  # the shared broker, which other tests and services use, stays up
    gate.touch()  # the job finishes while the broker is away
    wait_for(lambda: "finished complete" in server.log())
    wait_for(lambda: "kept in the outbox" in server.log(), timeout=30)
    private_broker.ctl("start_app")
    final = client.wait_status("through-outage", "complete", timeout=90)
    assert final["stdout"] == "survived\n"
    assert final["returncode"] == 0
    # the consumer came back too: a new job goes through
    wait_for(lambda: server.log().count(f"manager {manager_name}: consuming") >= 2, timeout=60)
    client.setup("after-outage", "echo again")
    assert client.wait_status("after-outage", "complete", timeout=60)["stdout"] == "again\n"


def test_status_survives_broker_outage_and_lwr_restart(
    private_broker: PrivateBroker,
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name, message_queue_url=private_broker.url)
    client = client_factory(manager_name, amqp_url=private_broker.url, amqp_publish_retry=True)
    gate = tmp_path / "gate"
    client.setup("outlives", f"while [ ! -e {gate} ]; do sleep 0.1; done; echo kept")
    client.wait_status("outlives", "running")
    private_broker.ctl("stop_app")
    gate.touch()
    wait_for(lambda: "finished complete" in server.log())
    server.stop()  # LWR goes away holding the undelivered update in its outbox
    private_broker.ctl("start_app")
    time.sleep(2)
    assert "outlives" not in [u.get("job_id") for u in client.updates if u["status"] == "complete"]
    server.start(timeout=60)
    assert re.search(r"\(\d+ status updates waiting in the outbox", server.log())
    final = client.wait_status("outlives", "complete", timeout=60)
    assert final["stdout"] == "kept\n"


# -- (e) a malformed message -----------------------------------------------------------------------


def test_malformed_messages_are_rejected_and_the_consumer_survives(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
) -> None:
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    key = f"pulsar_{manager_name}__setup"
    raw = [
        (b"{not json", "application/json"),
        (b"plain text", "text/plain"),
        (json.dumps([1, 2]).encode(), "application/json"),
        (json.dumps({"command_line": "echo x"}).encode(), "application/json"),
        (json.dumps({"job_id": "../etc", "command_line": "x"}).encode(), "application/json"),
        (
            json.dumps({"job_id": "bad-env", "command_line": "x", "env": "no"}).encode(),
            "application/json",
        ),
    ]
    publish_raw(key, raw)
    client.setup("good-after-bad", "echo still here")
    assert client.wait_status("good-after-bad", "complete")["stdout"] == "still here\n"
    # a refused job with a valid id is reported failed, so Galaxy stops waiting for it
    assert "wrong JSON type" in client.wait_status("bad-env", "failed")["stderr"]
    log = server.log()
    assert log.count("rejecting undecodable message") == 2, log
    assert log.count("rejecting malformed setup message") == 4, log
    assert queue_depth(manager_name, "setup") == 0  # rejected, not requeued


# -- (f) a redelivered setup -----------------------------------------------------------------------


def test_a_setup_repeated_while_the_job_runs_is_ignored(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    """After the job finished, a setup is a redelivery or Galaxy's resubmission of the job:
    test_amqp_resubmit.py tells the two apart."""
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    marker = tmp_path / "marker"
    body = client.setup("once", f"echo ran >> {marker} && sleep 2")
    client.publish("setup", dict(body))
    client.wait_status("once", "complete")
    assert marker.read_text() == "ran\n"
    assert server.log().count(f"job {manager_name}/once: duplicate submit ignored") == 1


# -- acknowledgements ------------------------------------------------------------------------------


def test_acknowledgements_both_ways(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name, amqp_acknowledge="true", amqp_ack_republish_time="1")
    client = client_factory(
        manager_name, amqp_acknowledge=True, persistence_directory=str(tmp_path / "client")
    )
    client.manager.ensure_has_ack_consumers()
    body = client.setup("acked", "echo acked")
    assert "acknowledge_uuid" in body
    client.publish("setup", {**body, "force_noack": True})  # the client's resend of the same
    assert client.wait_status("acked", "complete")["stdout"] == "acked\n"
    publish_store = tmp_path / "client" / f"amqp_ack-{manager_name}" / "publish"
    wait_for(lambda: not any(publish_store.iterdir()), what="the setup to be acknowledged")
    log = server.log()
    assert "already handled; acknowledging it again" in log
    assert log.count(f"job {manager_name}/acked: queued") == 1
    # the client acknowledged every status update, so nothing is republished
    wait_for(lambda: outbox_rows(server) == 0, what="the status updates to be acknowledged")
    time.sleep(2.5)
    assert "not acknowledged; publishing it again" not in server.log()


def test_unacknowledged_status_update_is_republished(
    manager_name: str, webless_factory: Callable[..., WeblessServer], tmp_path: Path
) -> None:
    server = webless_factory(manager_name, amqp_acknowledge="true", amqp_ack_republish_time="1")
    received: list[dict[str, Any]] = []
    with kombu.Connection(AMQP_URL) as connection:
        exchange = kombu.Exchange("pulsar", "direct", durable=True)
        producer = kombu.Producer(connection.default_channel)
        setup = {"job_id": "resent", "command_line": "echo x", "setup_params": {}}
        producer.publish(setup, exchange=exchange, routing_key=f"pulsar_{manager_name}__setup")
        queue_name = f"pulsar_{manager_name}__status_update"
        queue = kombu.Queue(queue_name, exchange, routing_key=queue_name, durable=True)

        def keep(body: dict[str, Any], message: Any) -> None:
            received.append(body)
            message.ack()  # the broker's ack only: the application never acknowledges

        with kombu.Consumer(connection, queues=[queue], callbacks=[keep], accept=["json"]):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                completes = [b for b in received if b["status"] == "complete"]
                if len(completes) >= 2:
                    break
                try:
                    connection.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
        completes = [b for b in received if b["status"] == "complete"]
        assert len(completes) >= 2, received
        assert completes[1].get("force_noack") is True
        assert completes[0]["acknowledge_uuid"] == completes[1]["acknowledge_uuid"]
        # acknowledging stops the resends
        uuids = {b["acknowledge_uuid"] for b in received}
        for ack_uuid in uuids:
            producer.publish(
                {"acknowledge_uuid_response": ack_uuid},
                exchange=exchange,
                routing_key=f"pulsar_{manager_name}__status_update_ack",
                declare=[
                    kombu.Queue(
                        f"pulsar_{manager_name}__status_update_ack",
                        exchange,
                        routing_key=f"pulsar_{manager_name}__status_update_ack",
                        durable=True,
                    )
                ],
            )
    wait_for(lambda: outbox_rows(server) == 0, what="the acknowledgements to clear the outbox")
    assert "not acknowledged; publishing it again" in server.log()


# -- a crash between the job store and the outbox -------------------------------------------------


def test_a_final_state_never_announced_is_announced_after_restart(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
) -> None:
    """kill -9 after a job's final state reached the job store but before its update reached
    the outbox (two SQLite files): simulated by removing the outbox's record of the announcement
    while LWR is down. The restarted server must announce that job, and only that one."""
    import sqlite3

    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    client.setup("crashed", "echo lost")
    client.setup("told", "echo told")
    client.wait_status("crashed", "complete")
    client.wait_status("told", "complete")
    wait_for(lambda: outbox_rows(server) == 0, what="the updates to leave the outbox")
    server.kill9()
    path = server.directory / "files" / "persisted_data" / "outbox.sqlite3"
    with sqlite3.connect(path) as db:
        gone = db.execute("DELETE FROM announced WHERE job_id='crashed'").rowcount
    assert gone == 1
    assert client.statuses("crashed").count("complete") == 1
    told = client.statuses("told")
    server.start(timeout=60)
    wait_for(
        lambda: client.statuses("crashed").count("complete") == 2, what="the missed announcement"
    )
    again = [u for u in client.updates if u.get("job_id") == "crashed"][-1]
    assert (again["status"], again["stdout"]) == ("complete", "lost\n")
    assert "final state complete was never announced" in server.log()
    time.sleep(1.0)
    assert client.statuses("told") == told  # announced once: not again
