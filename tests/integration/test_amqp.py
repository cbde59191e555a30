"""LWR driven over a real RabbitMQ by Galaxy's own client library (``pulsar.client``).

Every test binds LWR (a real ``paster serve`` process) and the client to managers with fresh
names, so tests never see each other's queues, and deletes those queues afterwards. The broker is
the one at 127.0.0.1:5672; without it the tests skip locally and fail in CI.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.integration.conftest import ServerFactory, run_check
from tests.integration.server import LwrServer, free_port, write_server_ini

kombu = pytest.importorskip("kombu")
from kombu import pools  # noqa: E402 - only once kombu is known to be there

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
QUEUE_NAMES = ("setup", "kill", "status", "status_update", "setup_ack", "kill_ack")
QUEUE_NAMES += ("status_update_ack",)


def _broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def manager_name() -> Iterator[str]:
    """A fresh manager name; its queues are deleted from the broker after the test.

    Request it before any server fixture: it is then torn down after the servers stopped, which
    would otherwise declare the deleted queues again.
    """
    require_service(_broker_up(), "RabbitMQ is not reachable at 127.0.0.1:5672")
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    _delete_queues(name)


@pytest.fixture
def another_manager_name(manager_name: str) -> Iterator[str]:
    """A second fresh manager name, for tests with two servers."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    _delete_queues(name)


def _delete_queues(name: str) -> None:
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
        return self.directory / "files" / "staging" / manager


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


# -- the client side -------------------------------------------------------------------------------


class Client:
    """Galaxy's message-queue client manager for one manager, recording every status update."""

    def __init__(self, manager: str, **options: Any) -> None:
        from pulsar.client.manager import build_client_manager

        self.manager = build_client_manager(amqp_url=AMQP_URL, manager=manager, **options)
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


def _queue_depth(manager: str, name: str) -> int:
    with kombu.Connection(AMQP_URL) as connection:
        _, count, _ = connection.channel().queue_declare(f"pulsar_{manager}__{name}", passive=True)
        return int(count)


# -- (a) Galaxy's full scenario over the broker ----------------------------------------------------


def test_full_galaxy_scenario_over_the_broker(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.test import check

    from tests.integration.files_endpoint import FilesEndpoint

    server = webless_factory(manager_name)
    # check.py builds its client manager from amqp_url alone; bind it to this test's manager
    monkeypatch.setattr(
        check, "build_client_manager", functools.partial(build_client_manager, manager=manager_name)
    )
    with FilesEndpoint() as endpoint:
        run_check(
            None,
            manager_url=AMQP_URL,
            default_file_action="remote_transfer",
            files_endpoint=endpoint.url,
            jobs_directory=str(server.jobs_directory(manager_name)),
        )
    kinds = endpoint.kinds()
    assert {("GET", "input"), ("POST", "output")} <= kinds, kinds
    log = server.log()
    assert f"job {manager_name}/123456: finished complete (return code 4)" in log
    assert "serving the message queue only (no HTTP listener)" in log
    assert "Traceback" not in log


# -- (b) kill --------------------------------------------------------------------------------------


def test_kill_over_the_broker(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    pid_file = tmp_path / "sleep.pid"
    client.setup("kill-me", f"sleep 120 & echo $! > {pid_file}; wait")
    client.wait_status("kill-me", "running")
    _wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
    pid = int(pid_file.read_text())
    client.publish("kill", {"job_id": "kill-me"})
    final = client.wait_status("kill-me", "cancelled", timeout=30)
    assert final["complete"] == "true"
    assert f"job {manager_name}/kill-me: cancelled (killed)" in server.log()
    _wait_for(lambda: not _alive(pid), what=f"the job's sleep ({pid}) to be killed")
    # a kill for a job nobody knows is ignored, and the consumer goes on
    client.publish("kill", {"job_id": "never-seen"})
    client.setup("after-kill", "echo fine")
    assert client.wait_status("after-kill", "complete")["stdout"] == "fine\n"


# -- (c) two servers, two managers, one broker -----------------------------------------------------


def test_two_servers_on_two_managers_of_one_broker(
    manager_name: str,
    another_manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    lwr_server_factory: ServerFactory,
    client_factory: Callable[..., Client],
) -> None:
    first, second = manager_name, another_manager_name
    webless = webless_factory(first)
    http = lwr_server_factory(
        app_options={"message_queue_url": AMQP_URL},
        managers_ini=f"[manager:{second}]\ntype = queued_python\n",
    )
    assert http.get("healthz")[0] == 200  # the HTTP+MQ case still serves HTTP
    one, two = client_factory(first), client_factory(second)
    for index in range(3):
        one.setup(f"job{index}", f"echo first {index}")
        two.setup(f"job{index}", f"echo second {index}")
    for index in range(3):
        assert one.wait_status(f"job{index}", "complete")["stdout"] == f"first {index}\n"
        assert two.wait_status(f"job{index}", "complete")["stdout"] == f"second {index}\n"
    assert webless.jobs_directory(first).joinpath("job2").is_dir()
    assert (http.directory / "files" / "staging" / second / "job2").is_dir()
    assert f"job {second}/" not in webless.log()
    assert f"job {first}/" not in http.log()


# -- (d) the broker restarts in the middle of a job ------------------------------------------------


@pytest.fixture
def rabbitmqctl() -> Iterator[Callable[[str], None]]:
    """Run ``rabbitmqctl stop_app`` / ``start_app``; the broker is always started again."""
    require_service(shutil.which("rabbitmqctl") is not None, "rabbitmqctl is not installed")

    def run(command: str) -> None:
        subprocess.run(["rabbitmqctl", command], check=True, capture_output=True, timeout=120)

    yield run
    run("start_app")
    pools.reset()  # the client's pooled connections died with the broker


def test_broker_restart_mid_job(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    rabbitmqctl: Callable[[str], None],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name)
    # Galaxy's publisher reuses pooled connections: it needs its retry to survive the restart
    client = client_factory(manager_name, amqp_publish_retry=True)
    gate = tmp_path / "gate"
    client.setup("through-outage", f"while [ ! -e {gate} ]; do sleep 0.1; done; echo survived")
    client.wait_status("through-outage", "running")
    rabbitmqctl("stop_app")
    gate.touch()  # the job finishes while the broker is away
    _wait_for(lambda: "finished complete" in server.log())
    _wait_for(lambda: "kept in the outbox" in server.log(), timeout=30)
    rabbitmqctl("start_app")
    final = client.wait_status("through-outage", "complete", timeout=90)
    assert final["stdout"] == "survived\n"
    assert final["returncode"] == 0
    # the consumer came back too: a new job goes through
    _wait_for(lambda: server.log().count(f"manager {manager_name}: consuming") >= 2, timeout=60)
    client.setup("after-outage", "echo again")
    assert client.wait_status("after-outage", "complete", timeout=60)["stdout"] == "again\n"


def test_status_survives_broker_outage_and_lwr_restart(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    rabbitmqctl: Callable[[str], None],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name)
    client = client_factory(manager_name, amqp_publish_retry=True)
    gate = tmp_path / "gate"
    client.setup("outlives", f"while [ ! -e {gate} ]; do sleep 0.1; done; echo kept")
    client.wait_status("outlives", "running")
    rabbitmqctl("stop_app")
    gate.touch()
    _wait_for(lambda: "finished complete" in server.log())
    server.stop()  # LWR goes away holding the undelivered update in its outbox
    rabbitmqctl("start_app")
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
    with kombu.Connection(AMQP_URL) as connection:
        producer = kombu.Producer(connection.default_channel)
        exchange = kombu.Exchange("pulsar", "direct", durable=True)
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
        for body, content_type in raw:
            producer.publish(
                body,
                exchange=exchange,
                routing_key=key,
                content_type=content_type,
                content_encoding="utf-8",
            )
    client.setup("good-after-bad", "echo still here")
    assert client.wait_status("good-after-bad", "complete")["stdout"] == "still here\n"
    # a refused job with a valid id is reported failed, so Galaxy stops waiting for it
    assert "wrong JSON type" in client.wait_status("bad-env", "failed")["stderr"]
    log = server.log()
    assert log.count("rejecting undecodable message") == 2, log
    assert log.count("rejecting malformed setup message") == 4, log
    assert _queue_depth(manager_name, "setup") == 0  # rejected, not requeued


# -- (f) a redelivered setup -----------------------------------------------------------------------


def test_redelivered_setup_runs_the_job_once(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    marker = tmp_path / "marker"
    body = client.setup("once", f"echo ran >> {marker}")
    client.publish("setup", dict(body))
    client.wait_status("once", "complete")
    client.publish("setup", dict(body))  # and once more after it finished
    client.setup("sentinel", "true")
    client.wait_status("sentinel", "complete")
    assert marker.read_text() == "ran\n"
    assert server.log().count(f"job {manager_name}/once: duplicate submit ignored") == 2


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
    _wait_for(lambda: not any(publish_store.iterdir()), what="the setup to be acknowledged")
    log = server.log()
    assert "already handled; acknowledging it again" in log
    assert log.count(f"job {manager_name}/acked: queued") == 1
    # the client acknowledged every status update, so nothing is republished
    _wait_for(lambda: _outbox_rows(server) == 0, what="the status updates to be acknowledged")
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
    _wait_for(lambda: _outbox_rows(server) == 0, what="the acknowledgements to clear the outbox")
    assert "not acknowledged; publishing it again" in server.log()


# -- helpers ---------------------------------------------------------------------------------------


def _outbox_rows(server: LwrServer) -> int:
    import sqlite3

    path = server.directory / "files" / "persisted_data" / "outbox.sqlite3"
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
    return int(count)


def _wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
