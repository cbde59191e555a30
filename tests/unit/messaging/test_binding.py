"""The whole binding in one process over kombu's in-memory transport, with a real local manager.

The real broker is exercised by ``tests/integration/amqp/``; here the failure paths that
are hard to provoke there (a handler that raises, a publish that fails) are driven directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.messaging.bind_amqp import AmqpBinding

kombu = pytest.importorskip("kombu")

WaitFor = Callable[..., Any]


class Broker:
    """Publishes requests and collects status updates for one manager on ``memory://``."""

    def __init__(self, manager: str) -> None:
        self.manager = manager
        self.connection = kombu.Connection("memory://")
        self.exchange = kombu.Exchange("pulsar", "direct", durable=True)
        self.updates: list[dict[str, Any]] = []
        name = f"pulsar_{manager}__status_update"
        self.consumer = kombu.Consumer(
            self.connection.channel(),
            queues=[kombu.Queue(name, self.exchange, routing_key=name)],
            callbacks=[self._collect],
            accept=["json"],
        )
        self.consumer.consume()

    def _collect(self, body: dict[str, Any], message: Any) -> None:
        self.updates.append(body)
        message.ack()

    def publish(self, name: str, body: Any, **kwargs: Any) -> None:
        key = f"pulsar_{self.manager}__{name}"
        producer = kombu.Producer(self.connection.channel())
        producer.publish(
            body,
            exchange=self.exchange,
            routing_key=key,
            declare=[kombu.Queue(key, self.exchange, routing_key=key)],
            **kwargs,
        )

    def statuses(self, job_id: str) -> list[str]:
        self.drain()
        return [u["status"] for u in self.updates if u.get("job_id") == job_id]

    def drain(self) -> None:
        while True:
            try:
                self.connection.drain_events(timeout=0.01)
            except TimeoutError:
                return

    def depth(self, name: str) -> int:
        _, count, _ = self.connection.channel().queue_declare(
            f"pulsar_{self.manager}__{name}", passive=True
        )
        return int(count)


@pytest.fixture
def lwr(tmp_path: Path) -> Iterator[tuple[LwrApp, Broker]]:
    manager = f"m{uuid.uuid4().hex[:8]}"
    (tmp_path / "jm.ini").write_text(
        f"[manager:{manager}]\ntype = queued_python\nmin_polling_interval = 0.05\n"
    )
    config = load_app_config(
        {"message_queue_url": "memory://", "job_managers_config": "jm.ini"}, here=tmp_path
    )
    broker = Broker(manager)
    app = LwrApp(config)
    app.start()
    assert isinstance(app.messaging, AmqpBinding)
    assert app.messaging.wait_ready(10)
    yield app, broker
    app.stop()


def setup(job_id: str, command: str = "echo hi") -> dict[str, Any]:
    return {"job_id": job_id, "command_line": command, "setup_params": {}}


def test_setup_runs_the_job_and_publishes_every_state(
    lwr: tuple[LwrApp, Broker], wait_for: WaitFor
) -> None:
    _app, broker = lwr
    broker.publish("setup", setup("j1"))
    wait_for(lambda: "complete" in broker.statuses("j1"), what="complete")
    assert broker.statuses("j1") == ["queued", "running", "complete"]
    final = broker.updates[-1]
    assert (final["returncode"], final["stdout"]) == (0, "hi\n")
    assert "working_directory_contents" in final


def test_status_request_republishes_and_unknown_jobs_are_ignored(
    lwr: tuple[LwrApp, Broker], wait_for: WaitFor
) -> None:
    _app, broker = lwr
    broker.publish("setup", setup("j2"))
    wait_for(lambda: "complete" in broker.statuses("j2"), what="complete")
    broker.publish("status", {"job_id": "j2", "request": "status", "force_noack": True})
    broker.publish("status", {"job_id": "nobody"})
    wait_for(lambda: broker.statuses("j2").count("complete") == 2, what="the republished status")
    assert broker.statuses("nobody") == []


def test_an_unexpected_failure_is_retried_once(
    lwr: tuple[LwrApp, Broker], wait_for: WaitFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, broker = lwr
    manager = next(iter(app.managers.values()))
    real_submit, calls = manager.submit, []

    def flaky(job_id: str, launch: dict[str, Any]) -> Any:
        calls.append(job_id)
        if job_id == "always" or len(calls) == 1:
            raise RuntimeError("disk on fire")
        return real_submit(job_id, launch)

    monkeypatch.setattr(manager, "submit", flaky)
    broker.publish("setup", setup("flaky"))
    wait_for(lambda: "complete" in broker.statuses("flaky"), what="the retried job")
    assert calls == ["flaky", "flaky"]
    broker.publish("setup", setup("always"))
    wait_for(lambda: calls.count("always") == 2, what="the second attempt")
    broker.publish("setup", setup("after"))
    wait_for(lambda: "complete" in broker.statuses("after"), what="the next job")
    assert calls.count("always") == 2  # rejected after its redelivery, not looping
    assert broker.depth("setup") == 0


def test_malformed_messages_are_dropped(lwr: tuple[LwrApp, Broker], wait_for: WaitFor) -> None:
    _app, broker = lwr
    broker.publish(
        "setup", b"\x00garbage", content_type="application/json", content_encoding="binary"
    )
    broker.publish("setup", {"no": "job id"})
    broker.publish("kill", {"job_id": "../../etc"})
    broker.publish("setup", setup("fine"))
    wait_for(lambda: "complete" in broker.statuses("fine"), what="the good job")
    assert broker.depth("setup") == 0 and broker.depth("kill") == 0


def test_acknowledged_setup_is_answered_and_not_run_twice(
    lwr: tuple[LwrApp, Broker], wait_for: WaitFor, tmp_path: Path
) -> None:
    _app, broker = lwr
    marker = tmp_path / "marker"
    body = {
        **setup("acked", f"echo x >> {marker}"),
        "acknowledge_uuid": "uuid-1",
        "acknowledge_queue": "setup_ack",
    }
    broker.publish("setup", body)
    wait_for(lambda: "complete" in broker.statuses("acked"), what="complete")
    broker.publish("setup", {**body, "force_noack": True})
    wait_for(lambda: broker.depth("setup_ack") == 2, what="two acknowledgements")
    assert marker.read_text() == "x\n"


def test_a_service_users_job_is_never_published(
    lwr: tuple[LwrApp, Broker], wait_for: WaitFor
) -> None:
    """The status queue is Galaxy's: a user's job ``j9`` must not pass for Galaxy's ``j9``."""
    app, broker = lwr
    manager = next(iter(app.managers.values()))
    manager.setup("alice~j9")
    manager.submit("alice~j9", {"command_line": "echo user"})
    wait_for(lambda: manager.record("alice~j9").state.is_final, what="the user's job to end")
    broker.publish("setup", setup("j9", "echo galaxy"))  # Galaxy's own j9, after it

    def galaxy_done() -> bool:
        broker.drain()
        return any(u.get("stdout") == "galaxy\n" for u in broker.updates)

    wait_for(galaxy_done, what="Galaxy's j9 to complete")  # the outbox publishes in order
    assert broker.statuses("j9") == ["queued", "running", "complete"]
    assert not [u for u in broker.updates if u.get("stdout") == "user\n"]
    assert app.messaging is not None
    assert app.messaging.bindings[manager.name].publisher.announce_missed(manager) == 0
