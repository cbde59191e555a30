"""Galaxy's resubmission of a failed job over the message queue, with Galaxy's own client.

Galaxy resubmits a job that LWR reported ``failed`` or ``lost`` (its ``resubmit`` rules) under the
same job id: it sends a kill for the failed attempt, then a new setup message. Its message-queue
client never cleans the job on LWR, so LWR still holds the finished attempt. The new setup must
run attempt 2; the broker's redelivery of the setup that started attempt 1 must not
(:mod:`lwr.messaging.attempts`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.amqp.support import AMQP_URL, Client, WeblessServer, kombu, publish_raw
from tests.integration.files_endpoint import wait_for
from tests.integration.test_job_lifecycle import job_processes

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

ACKS: dict[str, dict[str, Any]] = {"plain": {}, "acknowledged": {"amqp_acknowledge": True}}


def _connect(
    manager: str,
    acks: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> tuple[WeblessServer, Client]:
    if acks == "plain":
        return webless_factory(manager), client_factory(manager)
    server = webless_factory(manager, amqp_acknowledge="true", amqp_ack_republish_time="1")
    client = client_factory(
        manager, amqp_acknowledge=True, persistence_directory=str(tmp_path / "client")
    )
    client.manager.ensure_has_ack_consumers()
    return server, client


def _vanish(working: Path, timeout: float = 60.0) -> None:
    """SIGKILL the job script and its command: it ends without a return code, so LWR says lost."""
    wait_for(lambda: (working / "started").exists(), timeout=timeout, what="the job to start")
    for proc in job_processes(str(working)):
        proc.kill()


def _forget_consumed(server: WeblessServer) -> None:
    import sqlite3

    with sqlite3.connect(server.directory / "files" / "persisted_data" / "outbox.sqlite3") as db:
        assert db.execute("DELETE FROM consumed").rowcount >= 1


def hand_back(manager: str, name: str) -> None:
    """Take the next message of a queue and return it unacked, as a consumer that died does:
    the broker delivers it again marked ``redelivered``."""
    with kombu.Connection(AMQP_URL) as connection:
        channel = connection.channel()
        message = channel.basic_get(f"pulsar_{manager}__{name}", no_ack=False)
        assert message is not None, f"no {name} message to hand back"
        channel.close()  # unacked: back to the queue


@pytest.mark.parametrize("acks", ACKS)
def test_a_resubmitted_job_runs_a_second_attempt(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
    acks: str,
) -> None:
    server, client = _connect(manager_name, acks, webless_factory, client_factory, tmp_path)
    marker = tmp_path / "marker"
    client.setup("resub", f"echo first >> {marker} && touch started && sleep 600")
    _vanish(server.jobs_directory(manager_name) / "resub" / "working")
    client.wait_status("resub", "lost")
    # what Galaxy's fail_job does: kill the failed attempt, then (resubmit rule) set it up again
    client.publish("kill", {"job_id": "resub"})
    # ... which LWR consumes first: Galaxy's job handler takes the job up again before it sends
    # the new setup (lwr.messaging.attempts: the kill and setup queues are not ordered)
    killed = f"job {manager_name}/resub: kill for attempt 1, already lost; nothing to do"
    wait_for(lambda: killed in server.log(), what="the kill of the lost attempt")
    client.setup("resub", f"echo second >> {marker}")
    assert client.wait_status("resub", "complete")["stdout"] == ""
    assert marker.read_text() == "first\nsecond\n"
    assert f"job {manager_name}/resub: set up again, attempt 2" in server.log()


@pytest.mark.parametrize("acks", ACKS)
def test_a_redelivered_setup_runs_the_job_once(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
    acks: str,
) -> None:
    """LWR died after the job was durable and before its ack: the broker redelivers the setup."""
    server, client = _connect(manager_name, acks, webless_factory, client_factory, tmp_path)
    marker = tmp_path / "marker"
    body = client.setup("once", f"echo ran >> {marker}")  # the client added its ack keys here
    client.wait_status("once", "complete")
    server.stop()
    if acks == "acknowledged":  # it died before remembering the uuid, too (its own commit)
        _forget_consumed(server)
    publish_raw(f"pulsar_{manager_name}__setup", [(json.dumps(body).encode(), "application/json")])
    hand_back(manager_name, "setup")
    server.start()
    client.setup("sentinel", "true")
    client.wait_status("sentinel", "complete")
    time.sleep(0.5)
    assert marker.read_text() == "ran\n"
    assert f"job {manager_name}/once: duplicate submit ignored (complete)" in server.log()


def test_a_pool_worker_runs_a_resubmitted_job_again(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    """A pool worker holds a setup until its job's final status is committed with the ack, so a
    setup for a job it finished is never the broker's redelivery: it starts anew (no guard)."""
    worker = workers("w0")
    client = client_factory(manager_name)
    marker = tmp_path / "marker"
    client.setup("resub", f"echo first >> {marker} && exit 3")
    assert client.wait_status("resub", "complete")["returncode"] == 3
    # Galaxy resubmits a job a job-handler cycle after it heard the final status; a setup sent
    # the instant the final arrives may still find the lease held (committing) and be taken
    # for a resend of the first (see docs/elastic_workers.md)
    settled = f"job {manager_name}/resub: final status complete published and setup acknowledged"
    wait_for(lambda: settled in worker.log(), what="the lease to end")
    client.setup("resub", f"echo second >> {marker}")
    wait_for(lambda: client.statuses("resub").count("complete") == 2, what="attempt 2")
    assert marker.read_text() == "first\nsecond\n"
    assert f"job {manager_name}/resub: set up" in worker.log()
