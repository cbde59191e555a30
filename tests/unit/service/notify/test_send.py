"""Delivery: mail to a real SMTP server (aiosmtpd, plain and STARTTLS), signed webhooks, retries."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from lwr.egress import EgressPolicy, parse_networks
from lwr.managers import namespace
from lwr.managers.base import JobState
from lwr.persistence.store import JobRecord, JobStore
from lwr.service.notify import smtp, webhook
from lwr.service.notify.outbox import FAILED, PENDING, SENT, Notification, NotifyStore
from lwr.service.notify.sender import Sender
from lwr.service.notify.settings import NotifyConfig, SmtpConfig
from tests.notify_servers import MailServer, WebhookReceiver, self_signed

#: the tests' receivers listen on loopback, which webhooks may only reach when it is allowed
LOOPBACK = parse_networks("127.0.0.0/8")
LOCAL = EgressPolicy(LOOPBACK)


def _item(target: str = "alice@example.org", secret: str | None = None) -> Notification:
    body = {
        "id": "7",
        "manager": "_default_",
        "state": "failed",
        "reason": "out of memory",
        "return_code": None,
        "url": "https://lwr.example/ui/jobs/7",
    }
    return Notification("d1", "email", "alice", target, secret, body, PENDING, 0, 0.0, None)


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost (its key beside it, key.pem)."""
    return self_signed(tmp_path, "IP:127.0.0.1,DNS:localhost")


def test_mail_has_the_job_its_state_the_link_and_the_delivery_id() -> None:
    with MailServer() as server:
        smtp.send(SmtpConfig("127.0.0.1", server.port, sender="lwr@example.org"), _item())
        (raw,) = server.messages
    mail = message_from_bytes(raw)
    assert mail["Subject"] == "LWR job 7 failed" and mail["To"] == "alice@example.org"
    assert mail["From"] == "lwr@example.org" and mail["Message-ID"] == "<d1@lwr>"
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "https://lwr.example/ui/jobs/7" in text and "out of memory" in text


def test_starttls_with_login_to_a_self_signed_server(certificate: Path, tmp_path: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, tmp_path / "key.pem")
    with MailServer(tls_context=context, logins={"lwr": "s3cret"}) as server:
        config = SmtpConfig(
            "127.0.0.1",
            server.port,
            tls="starttls",
            username="lwr",
            password="s3cret",
            ca_file=certificate,
        )
        smtp.send(config, _item())
        assert len(server.messages) == 1 and server.logins == ["lwr"]
        with pytest.raises(ssl.SSLError):  # an unknown CA is refused, not trusted
            smtp.send(SmtpConfig("127.0.0.1", server.port, tls="starttls"), _item())
    assert len(server.messages) == 1


def test_implicit_tls(certificate: Path, tmp_path: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, tmp_path / "key.pem")
    with MailServer(tls_context=context, implicit_tls=True) as server:
        smtp.send(SmtpConfig("127.0.0.1", server.port, tls="ssl", ca_file=certificate), _item())
        assert len(server.messages) == 1


def test_a_redirected_webhook_is_not_delivered() -> None:
    """urllib would follow a redirect (a 303 even as a GET without the body): refuse them all."""
    with WebhookReceiver({"alice": "k3y"}) as receiver:
        with pytest.raises(webhook.WebhookError, match="HTTP 303"):
            webhook.send(_item(receiver.url("moved"), "k3y"), 10, LOCAL)
        assert receiver.accepted == []


def test_webhook_signature_verifies_and_tampering_does_not() -> None:
    with WebhookReceiver({"alice": "k3y"}) as receiver:
        webhook.send(_item(receiver.url("alice"), "k3y"), 10, LOCAL)
        (delivery,) = receiver.accepted
        assert delivery["body"]["state"] == "failed" and delivery["delivery"] == "d1"
        with pytest.raises(webhook.WebhookError, match="HTTP 401"):
            webhook.send(_item(receiver.url("alice"), "wrong"), 10, LOCAL)
    now = str(int(time.time()))
    good = webhook.signature("k", now, b"{}")
    assert webhook.verify("k", now, b"{}", good)
    assert not webhook.verify("k", now, b"{ }", good)
    assert not webhook.verify(
        "k",
        str(int(time.time()) - 3600),
        b"{}",
        webhook.signature("k", str(int(time.time()) - 3600), b"{}"),
    )


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[tuple[JobStore, NotifyStore]]:
    store = JobStore(tmp_path / "state")
    notify = NotifyStore(store.db, egress=LOCAL)
    store.final_hooks.append(notify.enqueue)
    yield store, notify
    store.close()


def _finish(store: JobStore, job_id: str) -> None:
    store.put(JobRecord("_default_", namespace.scoped("alice", job_id), state=JobState.COMPLETE))


def test_webhook_failures_back_off_then_succeed_once(outbox: tuple[JobStore, NotifyStore]) -> None:
    store, notify = outbox
    with WebhookReceiver({}, fail_first=2) as receiver:
        _, secret = notify.set_channels("alice", {"webhook_url": receiver.url("alice")})
        receiver.secrets["alice"] = secret or ""
        _finish(store, "1")
        sender = Sender(notify, NotifyConfig(retry_delay=0.0, max_attempts=5))
        for _ in range(3):
            assert sender.run_once() == 1
        assert sender.run_once() == 0
        (row,) = notify.rows()
        assert row.status == SENT and row.attempts == 3
        assert len(receiver.accepted) == 1 and receiver.attempts == 3
        assert len({d["delivery"] for d in receiver.tries}) == 1  # one delivery id throughout


def test_backoff_doubles_and_the_last_failure_is_recorded(
    outbox: tuple[JobStore, NotifyStore], caplog: Any
) -> None:
    store, notify = outbox
    config = NotifyConfig(retry_delay=0.0, max_attempts=3)
    assert [
        NotifyConfig(retry_delay=2, retry_max_delay=10).backoff(n) for n in (1, 2, 3, 4, 5)
    ] == [2, 4, 8, 10, 10]
    notify.set_channels("alice", {"webhook_url": "http://127.0.0.1:9/nowhere"})
    _finish(store, "2")
    sender = Sender(notify, config)
    while sender.run_once():
        pass
    (row,) = notify.rows()
    assert row.status == FAILED and row.attempts == 3 and row.last_error
    assert "giving up" in caplog.text
