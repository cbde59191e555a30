"""LWR driven over a real RabbitMQ by Galaxy's own client library: whole jobs, kill, two servers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.amqp.support import (
    AMQP_URL,
    Client,
    WeblessServer,
    alive,
)
from tests.integration.conftest import ServerFactory, run_check
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


# -- (a) Galaxy's full scenario over the broker ----------------------------------------------------


def test_full_galaxy_scenario_over_the_broker(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.test import check

    from tests.integration.files_endpoint import FilesEndpoint

    server = webless_factory(manager_name)
    # check.py builds its client manager from amqp_url alone; bind it to this test's manager
    monkeypatch.setattr(
        check, "build_client_manager", functools.partial(build_client_manager, manager=manager_name)
    )
    with FilesEndpoint() as endpoint:
        run_check(
            None,
            manager_url=AMQP_URL,
            default_file_action="remote_transfer",
            files_endpoint=endpoint.url,
            jobs_directory=str(server.jobs_directory(manager_name)),
        )
    kinds = endpoint.kinds()
    assert {("GET", "input"), ("POST", "output")} <= kinds, kinds
    log = server.log()
    assert f"job {manager_name}/123456: finished complete (return code 4)" in log
    assert "serving the message queue only (no HTTP listener)" in log
    assert "Traceback" not in log


# -- (b) kill --------------------------------------------------------------------------------------


def test_kill_over_the_broker(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    pid_file = tmp_path / "sleep.pid"
    client.setup("kill-me", f"sleep 120 & echo $! > {pid_file}; wait")
    client.wait_status("kill-me", "running")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
    pid = int(pid_file.read_text())
    client.publish("kill", {"job_id": "kill-me"})
    final = client.wait_status("kill-me", "cancelled", timeout=30)
    assert final["complete"] == "true"
    assert f"job {manager_name}/kill-me: cancelled (killed)" in server.log()
    wait_for(lambda: not alive(pid), what=f"the job's sleep ({pid}) to be killed")
    # a kill for a job nobody knows is ignored, and the consumer goes on
    client.publish("kill", {"job_id": "never-seen"})
    client.setup("after-kill", "echo fine")
    assert client.wait_status("after-kill", "complete")["stdout"] == "fine\n"


# -- (c) two servers, two managers, one broker -----------------------------------------------------


def test_two_servers_on_two_managers_of_one_broker(
    manager_name: str,
    another_manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    lwr_server_factory: ServerFactory,
    client_factory: Callable[..., Client],
) -> None:
    first, second = manager_name, another_manager_name
    webless = webless_factory(first)
    http = lwr_server_factory(
        app_options={"message_queue_url": AMQP_URL},
        managers_ini=f"[manager:{second}]\ntype = queued_python\n",
    )
    assert http.get("healthz")[0] == 200  # the HTTP+MQ case still serves HTTP
    one, two = client_factory(first), client_factory(second)
    for index in range(3):
        one.setup(f"job{index}", f"echo first {index}")
        two.setup(f"job{index}", f"echo second {index}")
    for index in range(3):
        assert one.wait_status(f"job{index}", "complete")["stdout"] == f"first {index}\n"
        assert two.wait_status(f"job{index}", "complete")["stdout"] == f"second {index}\n"
    assert webless.jobs_directory(first).joinpath("job2").is_dir()
    assert (http.directory / "files" / "staging" / second / "job2").is_dir()
    assert f"job {second}/" not in webless.log()
