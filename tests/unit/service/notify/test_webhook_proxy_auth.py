"""Webhooks through a proxy that asks for credentials, and through an https proxy.

Real sockets: a forwarding proxy (:class:`tests.notify_servers.ForwardProxy`) that answers 407
without the right ``Proxy-Authorization``, optionally reached over TLS with a certificate of
the test CA; receivers over http and https. The credentials must reach the proxy and nothing
else: not the receiver inside a CONNECT tunnel, not the receiver of a forwarded plain-http
POST, not an error message.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.egress import EgressPolicy, Target, parse_networks
from lwr.proxy import Proxy
from lwr.service.notify import webhook
from lwr.service.notify.outbox import PENDING, Notification
from tests.notify_servers import ForwardProxy, WebhookReceiver, server_tls, signed_by_test_ca

HOOK = "hook.lwr.test"
USER, PASSWORD = "al@ice", "p:ss w%rd"
USERINFO = "al%40ice:p%3Ass%20w%25rd"  # as the option is written


def _dns(answer: str) -> EgressPolicy:
    def resolve(host: str, port: int) -> list[Target]:
        return [(socket.AF_INET, (answer, port))]

    return EgressPolicy(parse_networks("127.0.0.3/32"), resolver=resolve)


def _item(url: str) -> Notification:
    body = {"id": "7", "state": "complete"}
    return Notification("d1", "webhook", "alice", url, "k", body, PENDING, 0, 0.0, None)


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, Path, Path]:
    """One certificate for the receiver's name and the proxy's address (127.0.0.1)."""
    return signed_by_test_ca(tmp_path, HOOK, "127.0.0.1")


@pytest.fixture
def https_receiver(ca: tuple[Path, Path, Path]) -> Iterator[WebhookReceiver]:
    with WebhookReceiver({"alice": "k"}, host="127.0.0.3", tls=server_tls(*ca[1:])) as r:
        yield r


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy({HOOK: "127.0.0.3"}, credentials=(USER, PASSWORD)) as running:
        yield running


def test_credentials_go_on_the_connect_and_never_inside_the_tunnel(
    ca: tuple[Path, Path, Path], https_receiver: WebhookReceiver, proxy: ForwardProxy
) -> None:
    trusting = ssl.create_default_context(cafile=str(ca[0]))
    url = https_receiver.url("alice", HOOK)
    webhook.send(_item(url), 10, _dns("127.0.0.3"), trusting, Proxy.parse(proxy.url_with(USERINFO)))
    (delivery,) = https_receiver.accepted
    assert proxy.requests == [("CONNECT", f"{HOOK}:{https_receiver.port}")]
    assert proxy.authorizations == [f"{USER}:{PASSWORD}"]
    assert delivery["proxy_authorization"] is None  # the receiver never saw them


def test_plain_http_carries_the_credentials_to_the_proxy(proxy: ForwardProxy) -> None:
    with WebhookReceiver({"alice": "k"}, host="127.0.0.3") as receiver:
        url = receiver.url("alice", HOOK)
        webhook.send(_item(url), 10, _dns("127.0.0.3"), None, Proxy.parse(proxy.url_with(USERINFO)))
        (delivery,) = receiver.accepted
    assert proxy.requests == [("POST", url)] and proxy.authorizations == [f"{USER}:{PASSWORD}"]
    assert delivery["proxy_authorization"] is None  # the proxy strips them, as real ones do


@pytest.mark.parametrize("userinfo", [None, "al%40ice:wrong-s3cret"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_407_is_a_typed_failed_try_without_the_credentials(
    userinfo: str | None, scheme: str, https_receiver: WebhookReceiver, proxy: ForwardProxy
) -> None:
    """Missing or wrong credentials: a WebhookError (retried by the outbox) that says the
    proxy wants credentials, names the proxy without them, and nothing reaches the receiver."""
    through = Proxy.parse(proxy.url if userinfo is None else proxy.url_with(userinfo))
    with WebhookReceiver({"alice": "k"}, host="127.0.0.3") as plain:
        receiver = plain if scheme == "http" else https_receiver
        with pytest.raises(
            webhook.WebhookError, match=r"ProxyAuthError: the proxy .*407"
        ) as caught:
            webhook.send(_item(receiver.url("alice", HOOK)), 10, _dns("127.0.0.3"), None, through)
        assert plain.tries == [] and https_receiver.tries == []
    said = str(caught.value)
    assert "s3cret" not in said and "al@ice" not in said and "al%40ice" not in said, said
    assert ("none were given" if userinfo is None else "were refused") in said


def test_an_https_proxy_is_verified_and_tunnels_tls_inside_tls(
    ca: tuple[Path, Path, Path], https_receiver: WebhookReceiver
) -> None:
    """TLS to the proxy (its certificate checked by the same CA option), CONNECT inside it,
    and the receiver's own TLS inside that: the receiver sees its name as SNI."""
    trusting = ssl.create_default_context(cafile=str(ca[0]))
    tls = server_tls(*ca[1:])
    with ForwardProxy({HOOK: "127.0.0.3"}, credentials=(USER, PASSWORD), tls=tls) as proxy:
        through = Proxy.parse(proxy.url_with(USERINFO))
        assert through.tls
        for _ in range(2):  # twice: each try is its own pair of sessions
            webhook.send(_item(https_receiver.url("alice", HOOK)), 10, _dns("127.0.0.3"),
                         trusting, through)  # fmt: skip
        assert proxy.authorizations == [f"{USER}:{PASSWORD}"] * 2
    assert len(https_receiver.accepted) == 2 and https_receiver.server_names == [HOOK, HOOK]
    assert https_receiver.accepted[0]["proxy_authorization"] is None


def test_plain_http_through_an_https_proxy(ca: tuple[Path, Path, Path]) -> None:
    trusting = ssl.create_default_context(cafile=str(ca[0]))
    with (
        ForwardProxy({HOOK: "127.0.0.3"}, tls=server_tls(*ca[1:])) as proxy,
        WebhookReceiver({"alice": "k"}, host="127.0.0.3") as receiver,
    ):
        url = receiver.url("alice", HOOK)
        webhook.send(_item(url), 10, _dns("127.0.0.3"), trusting, Proxy.parse(proxy.url))
        assert proxy.requests == [("POST", url)] and len(receiver.accepted) == 1


def test_an_https_proxy_of_an_unknown_ca_is_refused(
    ca: tuple[Path, Path, Path], https_receiver: WebhookReceiver
) -> None:
    """Without the CA (the system's CAs only), the proxy's certificate fails: nothing sent,
    not even the CONNECT with its credentials."""
    with ForwardProxy({HOOK: "127.0.0.3"}, tls=server_tls(*ca[1:])) as proxy:
        url = https_receiver.url("alice", HOOK)
        with pytest.raises(webhook.WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
            webhook.send(_item(url), 10, _dns("127.0.0.3"), None, Proxy.parse(proxy.url))
        assert proxy.requests == []
    assert https_receiver.tries == []
