"""Message-queue sites: ``pulsar-config --mq`` (app.yml alone) and ``lwr config --mq``, each started
with ``lwr serve`` in its directory and driven by Galaxy's client over the real RabbitMQ."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_service
from tests.integration.amqp.support import AMQP_URL, QUEUE_NAMES, broker_up, kombu
from tests.integration.conftest import run_check
from tests.integration.files_endpoint import FilesEndpoint
from tests.integration.pulsar_site import (
    CommandServer,
    job_conf_snippet,
    lwr_config,
    pulsar_config,
)
from tests.integration.server import BIN

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """An amqp_key_prefix of this test's own; its queues are deleted afterwards."""
    require_service(broker_up(), "RabbitMQ is not reachable at 127.0.0.1:5672")
    prefix = f"lwrtest{uuid.uuid4().hex[:10]}"
    yield prefix
    with kombu.Connection(AMQP_URL) as connection:
        for name in QUEUE_NAMES:
            channel = connection.channel()
            try:
                channel.queue_delete(f"{prefix}_{name}")
            except Exception:  # absent queue: the channel closes; the next one is new
                pass


@pytest.fixture
def servers() -> Iterator[list[CommandServer]]:
    started: list[CommandServer] = []
    yield started
    for server in started:
        server.stop()


def run_check_over_mq(
    monkeypatch: pytest.MonkeyPatch, jobs_directory: str, **client_options: str
) -> set[tuple[str, str]]:
    """Galaxy's check over the broker, staging through a files endpoint; the kinds it served."""
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.test import check

    monkeypatch.setattr(
        check, "build_client_manager", functools.partial(build_client_manager, **client_options)
    )
    with FilesEndpoint() as endpoint:
        run_check(
            None,
            manager_url=AMQP_URL,
            default_file_action="remote_transfer",
            files_endpoint=endpoint.url,
            jobs_directory=jobs_directory,
        )
    return endpoint.kinds()


def test_pulsar_config_mq_app_yml_alone_serves_the_queue(
    manager_name: str,
    tmp_path: Path,
    servers: list[CommandServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = tmp_path / "pulsar-mq"
    pulsar_config(site, "--mq")
    assert not (site / "server.ini").exists()  # pulsar-config --mq writes app.yml only
    with open(site / "app.yml", "a", encoding="utf-8") as handle:
        handle.write(f"managers:\n  {manager_name}:\n    num_concurrent_jobs: 2\n")
    server = CommandServer(site, [str(BIN / "lwr"), "serve"], webless_managers=(manager_name,))
    servers.append(server.start())
    kinds = run_check_over_mq(
        monkeypatch, str(site / "files" / "staging" / manager_name), manager=manager_name
    )
    assert {("GET", "input"), ("POST", "output")} <= kinds, kinds
    log = server.log()
    assert f"job {manager_name}/123456: finished complete (return code 4)" in log
    assert "serving the message queue only (no HTTP listener)" in log


def test_lwr_config_mq_site_and_its_job_conf(
    key_prefix: str,
    tmp_path: Path,
    servers: list[CommandServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = tmp_path / "lwr-mq"
    result = lwr_config(site, "--mq", "--amqp-url", AMQP_URL, "--amqp-key-prefix", key_prefix)
    assert result.returncode == 0, result.stderr
    job_conf = yaml.safe_load(job_conf_snippet(result.stdout))
    runner = job_conf["runners"]["pulsar_mq"]
    assert runner["load"] == "galaxy.jobs.runners.pulsar:PulsarMQJobRunner"
    assert runner["amqp_url"] == AMQP_URL
    assert runner["amqp_key_prefix"] == key_prefix
    environment = job_conf["execution"]["environments"][job_conf["execution"]["default"]]
    assert environment["runner"] == "pulsar_mq"
    assert environment["default_file_action"] == "remote_transfer"

    assert f"from directory {site}:\n    lwr serve\n" in result.stdout
    server = CommandServer(site, [str(BIN / "lwr"), "serve"], webless_managers=("_default_",))
    servers.append(server.start())
    # the printed jobs_directory is where this server really puts its jobs
    kinds = run_check_over_mq(
        monkeypatch, environment["jobs_directory"], amqp_key_prefix=runner["amqp_key_prefix"]
    )
    assert {("GET", "input"), ("POST", "output")} <= kinds, kinds
    log = server.log()
    assert "job _default_/123456: finished complete (return code 4)" in log
    assert f"consuming {key_prefix}_setup" in log
