"""Webhooks through a proxy asking for credentials, reached over TLS: real servers.

Servers started as users start them, with ``notify_webhook_proxy`` an ``https://`` URL with
percent-encoded credentials naming a real forwarding proxy over TLS
(:class:`tests.notify_servers.ForwardProxy`), and ``notify_webhook_ca_file`` the test CA that
signed both the proxy's and the receiver's certificate. A user's https webhook goes TLS to the
proxy, CONNECT with ``Proxy-Authorization`` inside it, the receiver's TLS inside that. A server
given wrong credentials records a typed failure per try (retried by the outbox's rules) and
never shows the password: not in its log, ``lwr users show``, the user's JSON, /metrics, nor the
start-up error of a malformed option.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.files_endpoint import wait_for
from tests.integration.server import BIN, LwrServer, free_port, write_server_ini
from tests.integration.service_support import ADMIN, Service
from tests.notify_servers import ForwardProxy, WebhookReceiver, server_tls, signed_by_test_ca

pytestmark = [pytest.mark.integration]

MANAGERS = "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 2\n"
USER, PASSWORD = "lwr@site", "Pr0xy:s3cret w%rd"
# as written in server.ini: percent-encoded, and every '%' doubled for the ini file's sake
USERINFO = "lwr%%40site:Pr0xy%%3As3cret%%20w%%25rd"
OPTIONS = {
    "private_token": ADMIN,
    "notify_retry_delay": "0.2",
    "notify_retry_max_delay": "0.5",
    "notify_poll_interval": "0.2",
    "notify_max_attempts": "2",
    "notify_webhook_allowed_networks": "127.0.0.3/32",
    "notify_webhook_ca_file": "ca.pem",
}


@dataclass
class World:
    directory: Path
    receiver: WebhookReceiver
    proxy: ForwardProxy


def _start(directory: Path, options: dict[str, str]) -> Service:
    port = free_port()
    write_server_ini(directory, port, {**OPTIONS, **options})
    (directory / "job_managers.ini").write_text(MANAGERS)
    service = Service(LwrServer(directory, port), {})
    service.tokens["alice"] = service.lwr_users("add", "alice")["token"]
    service.server.start()
    return service


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("notify_proxy_auth")
    _, certificate, key = signed_by_test_ca(directory, "127.0.0.3", "127.0.0.1")
    with (
        WebhookReceiver({}, host="127.0.0.3", tls=server_tls(certificate, key)) as receiver,
        ForwardProxy(credentials=(USER, PASSWORD), tls=server_tls(certificate, key)) as proxy,
    ):
        yield World(directory, receiver, proxy)


def _server_dir(world: World, name: str) -> Path:
    directory = world.directory / name
    directory.mkdir()
    (directory / "ca.pem").write_bytes((world.directory / "ca.pem").read_bytes())
    return directory


def _register(service: Service, world: World) -> None:
    status, answer = service.call("alice", "PUT", "profile/notifications",
                                  webhook_url=world.receiver.url("alice"))  # fmt: skip
    assert status == 200, answer
    world.receiver.secrets["alice"] = answer["webhook_secret"]


def test_a_webhook_goes_tls_to_the_proxy_with_credentials_then_end_to_end(world: World) -> None:
    service = _start(
        _server_dir(world, "good"), {"notify_webhook_proxy": world.proxy.url_with(USERINFO)}
    )
    try:
        _register(service, world)
        service.run_job("alice", "a1", "true")
        (delivery,) = wait_for(
            lambda: [d for d in list(world.receiver.accepted) if d["body"]["id"] == "a1"],
            60,
            "alice's webhook",
        )
    finally:
        service.server.stop()
    assert ("CONNECT", f"127.0.0.3:{world.receiver.port}") in world.proxy.requests
    assert f"{USER}:{PASSWORD}" in world.proxy.authorizations
    assert delivery["proxy_authorization"] is None


def test_refused_credentials_are_a_typed_retried_failure_shown_nowhere(world: World) -> None:
    wrong = world.proxy.url_with("lwr%%40site:Wr0ng-s3cret")
    service = _start(_server_dir(world, "wrong"), {"notify_webhook_proxy": wrong})
    before = len(world.proxy.requests)
    try:
        _register(service, world)
        service.run_job("alice", "a2", "true")
        report = wait_for(
            lambda: (
                (r := service.lwr_users("show", "alice")["channels"])["deliveries"]["failed"] and r
            ),
            60,
            "alice's failed webhook",
        )
        texts: list[Any] = [report, service.call("alice", "GET", "profile/notifications")]
        texts.append(service.server.request("GET", "metrics", {"private_token": ADMIN}))
        texts.append(service.server.log())
    finally:
        service.server.stop()
    error = report["last_failure"]["error"]
    assert "ProxyAuthError" in error and "407" in error and "were refused" in error, error
    assert len(world.proxy.requests) - before == 2  # notify_max_attempts: tried twice
    assert not [d for d in world.receiver.tries if d["body"]["id"] == "a2"]
    for text in map(str, texts):
        assert "s3cret" not in text and "lwr@site" not in text and "lwr%40site" not in text


def test_a_malformed_proxy_option_stops_the_start_without_quoting_the_password(
    world: World,
) -> None:
    directory = _server_dir(world, "bad")
    bad = world.proxy.url_with(USERINFO) + "/path"
    write_server_ini(directory, free_port(), {**OPTIONS, "notify_webhook_proxy": bad})
    (directory / "job_managers.ini").write_text(MANAGERS)
    done = subprocess.run([str(BIN / "paster"), "serve", "server.ini"], cwd=directory,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "notify_webhook_proxy" in said and "nothing more" in said
    assert "s3cret" not in said and "lwr%40site" not in said, said
