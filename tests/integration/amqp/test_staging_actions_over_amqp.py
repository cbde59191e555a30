"""The staging actions message-queue sites use beyond remote_transfer, over a real RabbitMQ.

Galaxy's MQ runner sets the job up locally and leaves every file to the server: here the
outputs go back by tus (to Galaxy 26.1's tus server) or by rsync over ssh (to the test sshd),
with the key travelling inside the ``setup`` message.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.integration.amqp.support import AMQP_URL, WeblessServer
from tests.integration.cli.services import ssh_problem, ssh_settings
from tests.integration.conftest import run_check
from tests.integration.tus_endpoint import TusFilesEndpoint

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def _bind_check(monkeypatch: pytest.MonkeyPatch, manager_name: str, tmp_path: Path) -> Any:
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.test import check

    client_root = tmp_path / "client"
    client_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(client_root))
    monkeypatch.setattr(
        check, "build_client_manager", functools.partial(build_client_manager, manager=manager_name)
    )
    return check


def test_tus_over_the_broker(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _bind_check(monkeypatch, manager_name, tmp_path)
    server = webless_factory(manager_name)
    with TusFilesEndpoint(tmp_path / "uploads") as endpoint:
        run_check(
            None,
            manager_url=AMQP_URL,
            default_file_action="remote_transfer_tus",
            files_endpoint=endpoint.files_url(),
            jobs_directory=str(server.jobs_directory(manager_name)),
        )
    assert any(path.endswith("dataset_4.dat") for path, _ in endpoint.posted), endpoint.posted
    log = server.log()
    assert "by tus" in log and f"job {manager_name}/123456: finished complete" in log


@pytest.mark.sshd
def test_rsync_over_the_broker(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    sshd = ssh_settings()
    problem = ssh_problem(sshd)
    require_service(problem is None, problem or "")
    assert sshd is not None
    check = _bind_check(monkeypatch, manager_name, tmp_path)
    monkeypatch.setenv("PULSAR_TEST_KEY", sshd["KEY"])
    own = {"ssh_host": sshd["HOST"], "ssh_port": int(sshd["PORT"]), "ssh_user": sshd["USER"]}
    original = check.write_config
    action = "remote_rsync_transfer"

    def write_rules(temp_directory: str, data: dict[str, Any], name: str = "") -> str:
        rules = [{**r, **own} if r.get("action") == action else r for r in data["paths"]]
        return original(temp_directory, {"paths": [*rules, {"action": action, **own}]})

    monkeypatch.setattr(check, "write_config", write_rules)
    server = webless_factory(manager_name, staging_ssh_known_hosts=sshd["KNOWN_HOSTS"])
    run_check(
        None,
        manager_url=AMQP_URL,
        default_file_action=action,
        jobs_directory=str(server.jobs_directory(manager_name)),
    )
    log = server.log()
    assert "over rsync" in log and f"job {manager_name}/123456: finished complete" in log
    assert "BEGIN OPENSSH PRIVATE KEY" not in log
