"""user_auth over the message queue: Galaxy's MQ client sends ``token_endpoint`` in its setup
message; a refused job ends with a ``failed`` status update naming the reason (never dropped)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.amqp.support import Client, WeblessServer
from tests.integration.identity import JOB_KEY, USERLIST, IdentityProvider, user_auth_yaml

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


def test_setup_messages_are_judged(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    idp: IdentityProvider,
    tmp_path: Path,
) -> None:
    path = tmp_path / "user_auth.yml"
    path.write_text(user_auth_yaml(idp, USERLIST))
    server = webless_factory(manager_name, user_auth=str(path))
    client = client_factory(manager_name)
    jobs = {"mq-alice": idp.token("alice"), "mq-expired": idp.token("alice", lifetime=-120)}
    jobs["mq-mallory"] = idp.token("mallory")
    for job_id, token in jobs.items():
        idp.tokens[job_id] = token
        job = client.manager.get_client(
            {"jobs_directory": str(server.jobs_directory(manager_name))}, job_id
        )
        job_config = job.setup("cat1", "1.0")  # local: the setup travels in the message
        job.launch("echo hello", job_config=job_config, token_endpoint=idp.token_endpoint(job_id))

    done = client.wait_status("mq-alice", "complete")
    assert done["returncode"] == 0
    expired = client.wait_status("mq-expired", "failed")
    assert "setup failed: user_auth: the token has expired" in expired["reason"]
    assert "the token has expired" in expired["stderr"]
    unlisted = client.wait_status("mq-mallory", "failed")
    assert "user 'mallory' is not allowed" in unlisted["reason"]
    log = server.log()
    assert f"job {manager_name}/mq-alice: submitted by alice (user_auth oidc)" in log
    for token in jobs.values():
        assert token not in log
    assert JOB_KEY not in log
    assert "Traceback" not in log


def test_identity_service_down_fails_the_job_with_the_reason(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    idp: IdentityProvider,
    tmp_path: Path,
) -> None:
    path = tmp_path / "user_auth.yml"
    path.write_text(user_auth_yaml(idp, USERLIST))
    server = webless_factory(manager_name, user_auth=str(path))
    client = client_factory(manager_name)
    idp.tokens["mq-down"] = idp.token("alice")
    idp.jwks_status = 503
    client.setup("mq-down", "echo hello", token_endpoint=idp.token_endpoint("mq-down"))
    failed = client.wait_status("mq-down", "failed")
    assert "JWKS" in failed["reason"] and "HTTP Error 503" in failed["reason"]
    assert "Traceback" not in server.log()
