"""Webhooks may not reach the server's own network, on SQLite and PostgreSQL, with a real server.

The server runs in a mount namespace of its own whose ``/etc/hosts`` is a file of this test's
(bind-mounted over the real one, which is never touched; CI runs as root, which ``unshare``
needs), so the test controls what the server's resolver answers and can change it between a
webhook's registration and its send: DNS rebinding, for real, through glibc's resolver.
``rebind.lwr.test`` first resolves to a public address (accepted), then to 127.0.0.2, where a
receiver listens on the same port as the allowed one on 127.0.0.3: the guard removed, that
receiver gets the POST and the test goes red. ``notify_webhook_allowed_networks`` allows
127.0.0.3/32 only, the operator's internal receiver, reached by the name ``hook.lwr.test``.

A second, short-lived server keeps sent notifications a few seconds (``notify_keep_days``) and
its sender's loop deletes them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.integration.files_endpoint import wait_for
from tests.integration.server import BIN, LwrServer, free_port, write_server_ini
from tests.integration.service_support import ADMIN, Service, _database
from tests.notify_servers import WebhookReceiver

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

MANAGERS = "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 4\n"
PUBLIC = "93.184.216.34"  # any globally routable address: registration resolves, never connects
HOSTS = "127.0.0.1 localhost\n{rebind} rebind.lwr.test\n127.0.0.3 hook.lwr.test\n"
OPTIONS = {
    "private_token": ADMIN,
    "notify_retry_delay": "0.2",
    "notify_retry_max_delay": "1",
    "notify_poll_interval": "0.2",
    "notify_max_attempts": "3",
}


@dataclass
class World:
    service: Service
    hosts: Path
    allowed: WebhookReceiver  # on 127.0.0.3, inside the allowed network
    internal: WebhookReceiver  # on 127.0.0.2, same port: loopback, not allowed

    def resolve_rebind_to(self, address: str) -> None:
        """Rewrite the server's hosts file in place (a rename would leave the mount behind)."""
        self.hosts.write_text(HOSTS.format(rebind=address))

    def register(self, who: str, url: str) -> tuple[int, Any]:
        return self.service.call(who, "PUT", "profile/notifications", webhook_url=url)

    def report(self, who: str) -> dict[str, Any]:
        """``lwr users --json show WHO``'s notification part, as the admin reads it."""
        return dict(self.service.lwr_users("show", who)["channels"])


def _namespace_works() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = ["unshare", "--mount", "--propagation", "private", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _with_hosts(hosts: Path) -> list[str]:
    """The argv prefix running a command with ``hosts`` as its ``/etc/hosts``."""
    mount = f'mount --bind {shlex.quote(str(hosts))} /etc/hosts && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    require_service(_namespace_works(), "needs root and unshare for a private /etc/hosts")
    with (
        _database(request.param) as url,
        WebhookReceiver({}, host="127.0.0.3") as allowed,
        WebhookReceiver({}, host="127.0.0.2", port=allowed.port) as internal,
    ):
        directory = tmp_path_factory.mktemp(f"egress_{request.param}")
        hosts = directory / "hosts"
        hosts.write_text(HOSTS.format(rebind=PUBLIC))
        options = {**OPTIONS, "notify_webhook_allowed_networks": "127.0.0.3/32"}
        if url:
            options["database_url"] = url
        port = free_port()
        write_server_ini(directory, port, options)
        (directory / "job_managers.ini").write_text(MANAGERS)
        server = LwrServer(directory, port, wrapper=_with_hosts(hosts))
        service = Service(server, {})
        for name in ("alice", "dave", "erin"):
            service.tokens[name] = service.lwr_users("add", name)["token"]
        server.start()
        try:
            yield World(service, hosts, allowed, internal)
        finally:
            server.stop()


REFUSED = {
    "http://localhost:{port}/hook/erin": "'localhost' resolves to an internal address (loopback)",
    "http://127.0.0.2:{port}/hook/erin": "127.0.0.2 is an internal address (loopback)",
    "http://169.254.169.254/latest/meta-data/": "(link-local)",
    "http://[::1]:{port}/hook/erin": "(loopback)",
    "http://[::ffff:127.0.0.2]:{port}/hook/erin": "it carries the IPv4 address 127.0.0.2",
    "http://2130706433:{port}/hook/erin": "2130706433 is 127.0.0.1",
    "http://0177.0.0.2:{port}/hook/erin": "0177.0.0.2 is 127.0.0.2",
    "http://10.0.0.1/hook": "(private)",
    "http://0.0.0.0:{port}/hook/erin": "(unspecified)",
}


def test_internal_webhook_urls_are_refused_at_registration(world: World) -> None:
    for template, reason in REFUSED.items():
        status, answer = world.register("erin", template.format(port=world.allowed.port))
        assert status == 400 and reason in answer["error"], (template, answer)
        assert "notify_webhook_allowed_networks" in answer["error"]
    status, answer = world.service.call("erin", "GET", "profile/notifications")
    assert status == 200 and answer["notifications"]["webhook_url"] is None
    done = subprocess.run(  # the admin's command applies the server's policy too
        [str(BIN / "lwr"), "users", "set-notify", "erin", "--webhook-url", "http://localhost/x"],
        cwd=world.service.server.directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "loopback" in done.stderr
    assert world.allowed.tries == [] and world.internal.tries == []


def test_an_allowed_internal_receiver_gets_its_webhook_by_name(world: World) -> None:
    status, answer = world.register("alice", world.allowed.url("alice", "hook.lwr.test"))
    assert status == 200, answer
    world.allowed.secrets["alice"] = answer["webhook_secret"]
    world.service.run_job("alice", "a1", "true")
    (delivery,) = wait_for(lambda: _to(world.allowed, "a1"), 60, "alice's webhook")
    assert delivery["host"] == f"hook.lwr.test:{world.allowed.port}"
    assert world.internal.tries == []


def test_a_name_rebound_to_loopback_after_registration_is_refused_at_send(world: World) -> None:
    url = f"http://rebind.lwr.test:{world.internal.port}/hook/dave"
    status, answer = world.register("dave", url)
    assert status == 200, answer  # rebind.lwr.test is public now
    world.internal.secrets["dave"] = answer["webhook_secret"]  # it would take it, if it came
    world.resolve_rebind_to("127.0.0.2")
    try:
        status, answer = world.register("dave", url)  # registration would refuse it now
        assert status == 400 and "'rebind.lwr.test' resolves to an internal" in answer["error"]
        world.service.run_job("dave", "d1", "true")
        report = wait_for(lambda: _failed(world, "dave"), 60, "dave's refused webhook")
    finally:
        world.resolve_rebind_to(PUBLIC)
    failure = report["last_failure"]
    assert failure["channel"] == "webhook" and failure["job"] == "d1"
    assert failure["error"] == (
        "refused: 'rebind.lwr.test' resolves to an internal address (loopback)"
    )
    assert report["deliveries"] == {"pending": 0, "sent": 0, "failed": 1}  # tried once only
    assert world.internal.tries == [] and _to(world.allowed, "d1") == []
    assert "refused, not sent" in world.service.server.log()
    world.service.run_job("alice", "a2", "true")  # the sender goes on: a refusal is no crash
    wait_for(lambda: _to(world.allowed, "a2"), 60, "alice's next webhook")


def _to(receiver: WebhookReceiver, job_id: str) -> list[dict[str, Any]]:
    return [d for d in list(receiver.accepted) if d["body"]["id"] == job_id]


def _failed(world: World, who: str) -> dict[str, Any] | None:
    report = world.report(who)
    return report if report["deliveries"]["failed"] else None


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_senders_loop_prunes_what_was_sent(database: str, tmp_path: Path) -> None:
    """``notify_keep_days`` of 5 seconds: the row of a delivered webhook is deleted by the
    running server, and the receiver got the notification exactly once."""
    with _database(database) as url, WebhookReceiver({}) as receiver:
        options = {
            **OPTIONS,
            "notify_webhook_allowed_networks": "127.0.0.1/32",
            "notify_keep_days": str(5 / 86400),
        }
        if url:
            options["database_url"] = url
        port = free_port()
        write_server_ini(tmp_path, port, options)
        (tmp_path / "job_managers.ini").write_text(MANAGERS)
        service = Service(LwrServer(tmp_path, port), {})
        service.tokens["alice"] = service.lwr_users("add", "alice")["token"]
        service.server.start()
        try:
            status, answer = service.call(
                "alice", "PUT", "profile/notifications", webhook_url=receiver.url("alice")
            )
            assert status == 200, answer
            receiver.secrets["alice"] = answer["webhook_secret"]
            service.run_job("alice", "p1", "true")
            wait_for(lambda: _to(receiver, "p1"), 60, "the webhook")
            wait_for(lambda: "pruned 1 sent" in service.server.log(), 60, "the prune")
            counts = service.lwr_users("show", "alice")["channels"]["deliveries"]
            assert counts == {"pending": 0, "sent": 0, "failed": 0}
            assert len(_to(receiver, "p1")) == 1
        finally:
            service.server.stop()
