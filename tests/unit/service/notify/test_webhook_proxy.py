"""Webhooks through an operator's forward proxy, and https receivers a private CA vouches for.

Real sockets throughout: an HTTP(S) receiver on a loopback address, a forwarding proxy
(``CONNECT`` tunnels and absolute-form requests, :class:`tests.notify_servers.ForwardProxy`)
with DNS of its own, and a test CA whose server certificate names ``hook.lwr.test``. The
policy's resolver is a fake (as in test_webhook_egress.py): the egress guard judges the
target before the proxy is asked, and a refused target never reaches the proxy at all.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.egress import EgressPolicy, EgressRefused, Target, parse_networks
from lwr.errors import ConfigurationError
from lwr.proxy import Proxy
from lwr.service.notify import webhook
from lwr.service.notify.outbox import PENDING, Notification
from lwr.service.notify.settings import NOTIFY_DEFAULTS, parse_notify
from tests.notify_servers import ForwardProxy, WebhookReceiver, server_tls, signed_by_test_ca

ALLOWED = "127.0.0.3/32"  # the operator's receiver; 127.0.0.2 is internal and not allowed
HOOK = "hook.lwr.test"


def _dns(answer: str) -> EgressPolicy:
    def resolve(host: str, port: int) -> list[Target]:
        return [(socket.AF_INET, (answer, port))]

    return EgressPolicy(parse_networks(ALLOWED), resolver=resolve)


def _item(url: str) -> Notification:
    body = {"id": "7", "state": "complete"}
    return Notification("d1", "webhook", "alice", url, "k", body, PENDING, 0, 0.0, None)


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, Path, Path]:
    return signed_by_test_ca(tmp_path, HOOK)


@pytest.fixture
def https_receiver(ca: tuple[Path, Path, Path]) -> Iterator[WebhookReceiver]:
    _, certificate, key = ca
    with WebhookReceiver({"alice": "k"}, host="127.0.0.3", tls=server_tls(certificate, key)) as r:
        yield r


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy({HOOK: "127.0.0.3"}) as running:
        yield running


def test_https_through_the_proxy_is_tunnelled_and_verified_end_to_end(
    ca: tuple[Path, Path, Path], https_receiver: WebhookReceiver, proxy: ForwardProxy
) -> None:
    """The proxy is asked for the URL's host by name; TLS (SNI, certificate) is the receiver's."""
    trusting = ssl.create_default_context(cafile=str(ca[0]))
    url = https_receiver.url("alice", HOOK)
    webhook.send(_item(url), 10, _dns("127.0.0.3"), trusting, Proxy.parse(proxy.url))
    (delivery,) = https_receiver.accepted
    assert proxy.requests == [("CONNECT", f"{HOOK}:{https_receiver.port}")]
    assert https_receiver.server_names == [HOOK]
    assert delivery["host"] == f"{HOOK}:{https_receiver.port}"


def test_a_receiver_of_a_private_ca_is_refused_without_its_ca(
    https_receiver: WebhookReceiver, proxy: ForwardProxy
) -> None:
    """The system's CAs (no ``notify_webhook_ca_file``) do not know the test CA: no delivery,
    proxy or not."""
    url = https_receiver.url("alice", HOOK)
    for through in (Proxy.parse(proxy.url), None):
        with pytest.raises(webhook.WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
            webhook.send(_item(url), 10, _dns("127.0.0.3"), None, through)
    assert https_receiver.tries == []


def test_http_through_the_proxy_names_the_absolute_url(proxy: ForwardProxy) -> None:
    with WebhookReceiver({"alice": "k"}, host="127.0.0.3") as receiver:
        url = receiver.url("alice", HOOK)
        webhook.send(_item(url), 10, _dns("127.0.0.3"), None, Proxy.parse(proxy.url))
        (delivery,) = receiver.accepted
    assert proxy.requests == [("POST", url)]
    assert delivery["host"] == f"{HOOK}:{receiver.port}"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_internal_target_is_refused_before_the_proxy_is_asked(
    scheme: str, proxy: ForwardProxy
) -> None:
    """The guard judges the target as the server resolves it, proxy or not: the proxy could
    reach 127.0.0.2 (its DNS says so too), and is never asked."""
    proxy.names["inside.lwr.test"] = "127.0.0.2"
    with WebhookReceiver({"alice": "k"}, host="127.0.0.2") as internal:
        system = EgressPolicy(parse_networks(ALLOWED))  # a literal: the real resolver
        for host, policy in (("inside.lwr.test", _dns("127.0.0.2")), ("127.0.0.2", system)):
            url = f"{scheme}://{host}:{internal.port}/hook/alice"
            with pytest.raises(EgressRefused, match="loopback"):
                webhook.send(_item(url), 10, policy, None, Proxy.parse(proxy.url))
        assert internal.tries == [] and proxy.requests == []


def test_a_proxy_refusing_the_tunnel_is_a_failed_try(https_receiver: WebhookReceiver) -> None:
    with ForwardProxy(refuse=True) as refusing:
        with pytest.raises(
            webhook.WebhookError, match=r"ProxyError: the proxy \S+ answered CONNECT \S+ with 403"
        ):
            url = https_receiver.url("alice", HOOK)
            webhook.send(_item(url), 10, _dns("127.0.0.3"), None, Proxy.parse(refusing.url))
    assert https_receiver.tries == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://proxy:3128", "http:// or https:// URL"),
        ("http://:s3cret@proxy:3128", "without a user name"),
        ("http://a%3Ab:s3cret@proxy:3128", "':' in its user name"),
        ("http://a:s3cret%0D%0AX:%20y@proxy:3128", "control characters"),
        ("http://a:s3cret@proxy", "port"),
        ("http://a:s3cret@proxy:3128/path", "nothing more"),
        ("http://a:s3cret@proxy:port", "not a URL"),
        ("proxy:3128", "http:// or https:// URL"),
    ],
)
def test_bad_proxy_options_are_refused_at_start(url: str, says: str, tmp_path: Path) -> None:
    """Named and explained, never quoting the password (the error lands in logs)."""
    with pytest.raises(ConfigurationError, match=f"notify_webhook_proxy .*{says}") as caught:
        parse_notify({**NOTIFY_DEFAULTS, "notify_webhook_proxy": url}, tmp_path)
    assert "s3cret" not in str(caught.value)


def test_the_options_are_read(ca: tuple[Path, Path, Path], tmp_path: Path) -> None:
    options = {"notify_webhook_proxy": "http://[fd00::1]:3128", "notify_webhook_ca_file": "ca.pem"}
    config = parse_notify({**NOTIFY_DEFAULTS, **options}, tmp_path)
    assert config.webhook_proxy == Proxy("fd00::1", 3128)
    assert str(config.webhook_proxy) == "http://[fd00::1]:3128"
    assert config.webhook_ca_file == ca[0]
    default = parse_notify(dict(NOTIFY_DEFAULTS), tmp_path)
    assert default.webhook_proxy is None and default.webhook_ca_file is None


def test_a_ca_file_that_is_missing_or_no_ca_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    for name, says in (("missing.pem", "does not exist"), ("junk.pem", "no usable CA")):
        with pytest.raises(ConfigurationError, match=f"notify_webhook_ca_file .*{says}"):
            parse_notify({**NOTIFY_DEFAULTS, "notify_webhook_ca_file": name}, tmp_path)
