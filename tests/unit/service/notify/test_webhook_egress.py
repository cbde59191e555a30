"""Webhook sends under the egress policy: resolved once, judged, connected to what was judged.

The receivers are real HTTP(S) servers on loopback addresses (Linux answers all of 127.0.0.0/8,
so two receivers on 127.0.0.2 and 127.0.0.3 can share one port and be told apart). The resolver
is a fake standing in for DNS: it names hosts the system cannot resolve (``*.lwr.test``), so a
client that resolved a name again behind the policy's back would fail, and it can change its
answer between registration and send, which is what DNS rebinding does.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.egress import EgressPolicy, EgressRefused, Target, parse_networks
from lwr.errors import InvalidRequestError
from lwr.managers import namespace
from lwr.managers.base import JobState
from lwr.persistence.store import JobRecord, JobStore
from lwr.service.notify import webhook
from lwr.service.notify.outbox import FAILED, PENDING, SENT, Notification, NotifyStore
from lwr.service.notify.sender import Sender
from lwr.service.notify.settings import NotifyConfig
from tests.notify_servers import WebhookReceiver, self_signed

ALLOWED = "127.0.0.3/32"  # the "internal receiver" an operator allowed; 127.0.0.2 is not


class FakeDns:
    """Answers ``answer`` for every name and counts the questions."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[Target]:
        self.asked.append(host)
        return [(socket.AF_INET, (self.answer, port))]


@pytest.fixture
def receivers() -> Iterator[tuple[WebhookReceiver, WebhookReceiver]]:
    """``allowed`` on 127.0.0.3 and ``internal`` on 127.0.0.2, on the same port."""
    with WebhookReceiver({"alice": "k"}, host="127.0.0.3") as allowed:
        with WebhookReceiver({"alice": "k"}, host="127.0.0.2", port=allowed.port) as internal:
            yield allowed, internal


def _item(url: str) -> Notification:
    body = {"id": "7", "state": "complete"}
    return Notification("d1", "webhook", "alice", url, "k", body, PENDING, 0, 0.0, None)


def test_the_post_goes_to_the_address_judged_with_the_urls_host(
    receivers: tuple[WebhookReceiver, WebhookReceiver],
) -> None:
    """One resolution per try; a later answer (127.0.0.2, refused) is never asked for."""
    allowed, internal = receivers
    dns = FakeDns("127.0.0.3")
    policy = EgressPolicy(parse_networks(ALLOWED), resolver=dns)
    url = f"http://hook.lwr.test:{allowed.port}/hook/alice"
    webhook.send(_item(url), 10, policy)
    (delivery,) = allowed.accepted
    assert delivery["host"] == f"hook.lwr.test:{allowed.port}" and internal.tries == []
    assert dns.asked == ["hook.lwr.test"]


def test_a_name_rebound_to_an_internal_address_after_registration_is_refused_at_send(
    tmp_path: Path, receivers: tuple[WebhookReceiver, WebhookReceiver]
) -> None:
    """Registered while it resolved to a public address; at send it resolves to 127.0.0.2,
    where a receiver waits: nothing reaches it, the row fails at once with the reason."""
    _, internal = receivers
    dns = FakeDns("93.184.216.34")
    store = JobStore(tmp_path / "state")
    try:
        notify = NotifyStore(store.db, egress=EgressPolicy(parse_networks(ALLOWED), resolver=dns))
        store.final_hooks.append(notify.enqueue)
        url = f"http://rebind.lwr.test:{internal.port}/hook/alice"
        notify.set_channels("alice", {"webhook_url": url, "webhook_secret": "k"})
        dns.answer = "127.0.0.2"
        with pytest.raises(InvalidRequestError, match="loopback"):  # as registration now says
            notify.set_channels("alice", {"webhook_url": url})
        store.put(JobRecord("_default_", namespace.scoped("alice", "7"), state=JobState.COMPLETE))
        sender = Sender(notify, NotifyConfig(retry_delay=0.0, max_attempts=5))
        assert sender.run_once() == 1 and sender.run_once() == 0  # given up, not retried
        (row,) = notify.rows()
        assert row.status == FAILED and row.attempts == 1
        assert row.last_error == (
            "refused: 'rebind.lwr.test' resolves to an internal address (loopback)"
        )
        assert internal.tries == []
    finally:
        store.close()


def test_an_unresolvable_host_is_a_failed_try_retried_later(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "state")
    try:
        notify = NotifyStore(store.db)
        store.final_hooks.append(notify.enqueue)
        notify.set_channels("alice", {"webhook_url": "http://no-such-host.invalid/hook"})
        store.put(JobRecord("_default_", namespace.scoped("alice", "7"), state=JobState.COMPLETE))
        assert Sender(notify, NotifyConfig(retry_delay=60)).run_once() == 1
        (row,) = notify.rows()
        assert (
            row.status == PENDING and row.attempts == 1 and "cannot resolve" in str(row.last_error)
        )
    finally:
        store.close()


def test_every_address_of_a_name_is_judged_before_any_is_connected_to(
    receivers: tuple[WebhookReceiver, WebhookReceiver],
) -> None:
    allowed, internal = receivers

    def both(host: str, port: int) -> list[Target]:
        return [(socket.AF_INET, ("127.0.0.3", port)), (socket.AF_INET, ("127.0.0.2", port))]

    policy = EgressPolicy(parse_networks(ALLOWED), resolver=both)
    with pytest.raises(EgressRefused):
        webhook.send(_item(f"http://two.lwr.test:{allowed.port}/hook/alice"), 10, policy)
    assert allowed.tries == [] and internal.tries == []


def test_https_verifies_the_certificate_of_the_urls_host_sent_as_sni(tmp_path: Path) -> None:
    certificate = self_signed(tmp_path, "DNS:hook.lwr.test")
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(certificate, tmp_path / "key.pem")
    trusting = ssl.create_default_context(cafile=str(certificate))
    policy = EgressPolicy(parse_networks(ALLOWED), resolver=FakeDns("127.0.0.3"))
    with WebhookReceiver({"alice": "k"}, host="127.0.0.3", tls=server_side) as receiver:
        url = receiver.url("alice", "hook.lwr.test")
        webhook.send(_item(url), 10, policy, trusting)
        assert len(receiver.accepted) == 1 and receiver.server_names == ["hook.lwr.test"]
        other = url.replace("hook.lwr.test", "other.lwr.test")  # same address, wrong name
        with pytest.raises(webhook.WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
            webhook.send(_item(other), 10, policy, trusting)
        assert len(receiver.accepted) == 1


def test_allowed_receiver_end_to_end_through_the_sender(
    tmp_path: Path, receivers: tuple[WebhookReceiver, WebhookReceiver]
) -> None:
    allowed, _ = receivers
    store = JobStore(tmp_path / "state")
    try:
        notify = NotifyStore(store.db, egress=EgressPolicy(parse_networks(ALLOWED)))
        store.final_hooks.append(notify.enqueue)
        notify.set_channels("alice", {"webhook_url": allowed.url("alice"), "webhook_secret": "k"})
        with pytest.raises(InvalidRequestError, match="loopback"):
            notify.set_channels("alice", {"webhook_url": allowed.url("alice", "127.0.0.2")})
        store.put(JobRecord("_default_", namespace.scoped("alice", "7"), state=JobState.COMPLETE))
        assert Sender(notify, NotifyConfig()).run_once() == 1
        (row,) = notify.rows()
        assert row.status == SENT and len(allowed.accepted) == 1
    finally:
        store.close()
