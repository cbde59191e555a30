"""Completion notifications end to end, on SQLite and PostgreSQL: a real server, real receivers.

The server is started as users start it (``paster serve server.ini``); mail goes to a real SMTP
server (aiosmtpd, in this process) and webhooks to a real HTTP endpoint that verifies each
signature. The kill test holds the sender inside its SMTP conversation, kills the server with
SIGKILL there, restarts it and counts: exactly one mail and one webhook for the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from typing import Any

import pytest

from tests.integration.files_endpoint import wait_for
from tests.integration.server import LwrServer, free_port, write_server_ini
from tests.integration.service_support import ADMIN, Service, _database
from tests.notify_servers import MailServer, WebhookReceiver

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

MANAGERS = "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 4\n"


@dataclass
class World:
    service: Service
    mail: MailServer
    hooks: WebhookReceiver

    def mails_for(self, job_id: str) -> list[Any]:
        found = [message_from_bytes(raw) for raw in list(self.mail.messages)]
        return [m for m in found if str(m["Subject"]).startswith(f"LWR job {job_id} ")]

    def hooks_for(self, job_id: str) -> list[dict[str, Any]]:
        return [d for d in list(self.hooks.accepted) if d["body"]["id"] == job_id]

    def wait_told(self, job_id: str) -> None:
        """Until the job's mail and webhook both arrived."""
        wait_for(lambda: self.mails_for(job_id) and self.hooks_for(job_id), 60, f"{job_id} told")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """alice with email and webhook, bob with neither, carol with a webhook nobody answers."""
    with _database(request.param) as url, MailServer() as mail, WebhookReceiver({}) as hooks:
        directory = tmp_path_factory.mktemp(f"notify_{request.param}")
        options = {
            "private_token": ADMIN,
            "smtp_host": "127.0.0.1",
            "smtp_port": str(mail.port),
            "smtp_sender": "lwr@example.org",
            "smtp_timeout": "20",
            "public_url": "https://lwr.example",
            "notify_retry_delay": "0.2",
            "notify_retry_max_delay": "1",
            "notify_poll_interval": "0.2",
            "notify_max_attempts": "4",
            "notify_lease": "2",
            # the receivers listen on loopback: the operator's allowance for internal receivers
            "notify_webhook_allowed_networks": "127.0.0.0/8",
        }
        if url:
            options["database_url"] = url
        port = free_port()
        write_server_ini(directory, port, options)
        (directory / "job_managers.ini").write_text(MANAGERS)
        service = Service(LwrServer(directory, port), {})
        for name in ("alice", "bob", "carol"):
            service.tokens[name] = service.lwr_users("add", name)["token"]
        service.server.start()
        try:
            answer = _put(
                service, "alice", email="alice@example.org", webhook_url=hooks.url("alice")
            )
            hooks.secrets["alice"] = answer["webhook_secret"]
            service.lwr_users(
                "set-notify",
                "carol",
                "--webhook-url",
                "http://127.0.0.1:9/x",
                "--webhook-secret",
                "c",
            )
            yield World(service, mail, hooks)
        finally:
            service.server.stop()


def _put(service: Service, who: str, **settings: str) -> dict[str, Any]:
    status, answer = service.call(who, "PUT", "profile/notifications", **settings)
    assert status == 200, answer
    return dict(answer)


def test_profile_route(world: World) -> None:
    service = world.service
    status, answer = service.call("alice", "GET", "profile/notifications")
    assert status == 200 and answer["notifications"] == {
        "email": "alice@example.org",
        "webhook_url": world.hooks.url("alice"),
        "webhook_secret_set": True,
    }
    for bad in ({"email": "nope"}, {"webhook_url": "ftp://x"}, {}):
        status, answer = service.call("bob", "PUT", "profile/notifications", **bad)
        assert status == 400 and "error" in answer
    status, answer = service.call("admin", "GET", "profile/notifications")
    assert status == 400 and "set-notify" in answer["error"]
    assert service.call("bob", "GET", "profile/notifications")[1]["notifications"]["email"] is None


def test_each_final_state_tells_the_owner_once_by_each_channel(world: World) -> None:
    service = world.service
    service.run_job("alice", "done", "echo hi > {o}/out.txt")
    service.run_job("alice", "stopped", "sleep 60")
    service.wait("alice", "stopped", ("running",))
    assert service.call("alice", "PUT", "jobs/stopped/cancel")[0] == 200
    service.run_job("admin", "done", "true")  # the admin token's job: no owner, no one told
    service.run_job("bob", "done", "true")  # bob set no channel
    for job_id, state in (("done", "complete"), ("stopped", "cancelled")):
        world.wait_told(job_id)
        (mail,) = world.mails_for(job_id)
        assert mail["Subject"] == f"LWR job {job_id} {state}" and mail["To"] == "alice@example.org"
        assert f"https://lwr.example/ui/jobs/{job_id}" in mail.get_payload()
        (hook,) = world.hooks_for(job_id)
        assert hook["body"]["state"] == state and hook["body"]["owner"] == "alice"
        assert mail["X-LWR-Delivery"] != hook["delivery"]
    service.wait("admin", "done")
    service.wait("bob", "done")
    _fence(world, "fence1")
    assert len(world.mails_for("done")) == 1 and len(world.hooks_for("done")) == 1


def _fence(world: World, job_id: str) -> None:
    """Run one more job of alice's and wait for its notifications: all before it were sent."""
    world.service.run_job("alice", job_id, "true")
    world.wait_told(job_id)


def test_a_webhook_nobody_answers_is_retried_then_recorded_failed(world: World) -> None:
    service = world.service
    service.run_job("carol", "c1", "true")
    wait_for(lambda: "after 4 attempts, giving up" in service.server.log(), 60, "carol's failure")
    assert service.server.log().count("notify: webhook") >= 4


def test_failed_webhook_tries_are_retried_with_backoff(world: World) -> None:
    world.hooks.fail_first = 2
    tries_before = world.hooks.attempts
    world.service.run_job("alice", "flaky", "true")
    world.wait_told("flaky")
    assert world.hooks.attempts - tries_before == 3
    assert len(world.hooks_for("flaky")) == 1


@pytest.mark.parametrize("held", ["mail", "webhook"])
def test_kill9_mid_send_then_restart_sends_exactly_once(world: World, held: str) -> None:
    """The sender is held inside its SMTP conversation (after RCPT TO) or its webhook POST
    (before the body is read): nothing is taken yet when SIGKILL lands."""
    service, job_id = world.service, f"killed-{held}"
    receiver = world.mail if held == "mail" else world.hooks
    receiver.block = True
    service.run_job("alice", job_id, "true")
    assert receiver.blocked.wait(60), service.server.log()[-3000:]
    service.server.kill9()
    receiver.block = False
    receiver.release.set()
    service.server.start()
    world.wait_told(job_id)
    _fence(world, f"fence-{held}")
    assert len(world.mails_for(job_id)) == 1 and len(world.hooks_for(job_id)) == 1
    assert service.wait("alice", job_id)["status"] == "complete"
