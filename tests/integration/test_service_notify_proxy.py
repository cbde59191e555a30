"""Webhooks through a forward proxy to an https receiver of a private CA, with a real server.

The server is started as users start it, with ``notify_webhook_proxy`` naming a real
forwarding proxy (:class:`tests.notify_servers.ForwardProxy`, in this process) and
``notify_webhook_ca_file`` the test CA that signed the receiver's certificate. A user's https
webhook reaches the receiver through the proxy's CONNECT tunnel, verified by that CA; an
internal target is refused with the proxy configured as without it, and the proxy never hears
of it; a second server without the CA option refuses the same receiver's certificate.

The notification code is the same on both databases (the outbox's tests run on both): SQLite
only here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.files_endpoint import wait_for
from tests.integration.server import LwrServer, free_port, write_server_ini
from tests.integration.service_support import ADMIN, Service
from tests.notify_servers import ForwardProxy, WebhookReceiver, server_tls, signed_by_test_ca

pytestmark = [pytest.mark.integration]

MANAGERS = "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 2\n"
OPTIONS = {
    "private_token": ADMIN,
    "notify_retry_delay": "0.2",
    "notify_retry_max_delay": "1",
    "notify_poll_interval": "0.2",
    "notify_max_attempts": "1",
    # the receiver is the operator's own, on 127.0.0.3; 127.0.0.2 stands for the intranet
    "notify_webhook_allowed_networks": "127.0.0.3/32",
}


@dataclass
class World:
    service: Service
    receiver: WebhookReceiver
    proxy: ForwardProxy


def _start(directory: Path, options: dict[str, str]) -> Service:
    port = free_port()
    write_server_ini(directory, port, {**OPTIONS, **options})
    (directory / "job_managers.ini").write_text(MANAGERS)
    service = Service(LwrServer(directory, port), {})
    for name in ("alice", "bob"):
        service.tokens[name] = service.lwr_users("add", name)["token"]
    service.server.start()
    return service


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("notify_proxy")
    _, certificate, key = signed_by_test_ca(directory, "127.0.0.3")  # directory/ca.pem
    tls = server_tls(certificate, key)
    with WebhookReceiver({}, host="127.0.0.3", tls=tls) as receiver, ForwardProxy() as proxy:
        options = {"notify_webhook_ca_file": "ca.pem", "notify_webhook_proxy": proxy.url}
        service = _start(directory, options)
        try:
            yield World(service, receiver, proxy)
        finally:
            service.server.stop()


def _register(service: Service, who: str, url: str) -> tuple[int, Any]:
    return service.call(who, "PUT", "profile/notifications", webhook_url=url)


def _to(receiver: WebhookReceiver, job_id: str) -> list[dict[str, Any]]:
    return [d for d in list(receiver.accepted) if d["body"]["id"] == job_id]


def test_a_webhook_goes_through_the_proxy_verified_by_the_configured_ca(world: World) -> None:
    status, answer = _register(world.service, "alice", world.receiver.url("alice"))
    assert status == 200, answer
    world.receiver.secrets["alice"] = answer["webhook_secret"]
    world.service.run_job("alice", "p1", "true")
    (delivery,) = wait_for(lambda: _to(world.receiver, "p1"), 60, "alice's webhook")
    assert delivery["host"] == f"127.0.0.3:{world.receiver.port}"
    assert ("CONNECT", f"127.0.0.3:{world.receiver.port}") in world.proxy.requests


def test_an_internal_target_is_refused_with_a_proxy_configured(world: World) -> None:
    for url in (
        f"https://127.0.0.2:{world.receiver.port}/hook/bob",
        "http://169.254.169.254/latest/meta-data/",
        f"http://localhost:{world.receiver.port}/hook/bob",
    ):
        status, answer = _register(world.service, "bob", url)
        assert status == 400 and "internal address" in answer["error"], (url, answer)
    assert not [r for r in world.proxy.requests if "127.0.0.3" not in r[1]]


def test_without_the_ca_option_the_receivers_certificate_is_refused(
    world: World, tmp_path: Path
) -> None:
    """The same receiver and proxy, a server trusting the system's CAs only: nothing sent."""
    service = _start(tmp_path, {"notify_webhook_proxy": world.proxy.url})
    try:
        status, answer = _register(service, "alice", world.receiver.url("alice"))
        assert status == 200, answer
        service.run_job("alice", "p2", "true")
        report = wait_for(
            lambda: (
                (r := service.lwr_users("show", "alice")["channels"])["deliveries"]["failed"] and r
            ),
            60,
            "alice's failed webhook",
        )
    finally:
        service.server.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in report["last_failure"]["error"]
    assert _to(world.receiver, "p2") == []
