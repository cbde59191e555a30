"""A kill that reaches LWR (a server or a pool worker) before its job's setup, over real RabbitMQ.

Galaxy publishes a job's setup and its kill on two queues, and the broker keeps no order between
queues: after an outage, or with a backlog of setups, LWR may consume the kill first. The job must
then never run, Galaxy must hear exactly one final status (``cancelled``), and the memory of that
kill must survive an LWR restart between the two messages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.amqp.pool_support import PoolEar, finals, settle
from tests.integration.amqp.support import Client, WeblessServer, outbox_rows
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

REMEMBERED = "kill came before the job's setup; remembered"


def test_a_kill_before_its_setup_keeps_the_job_from_running(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    ran = tmp_path / "early-ran"
    client.publish("kill", {"job_id": "early"})
    wait_for(lambda: f"job {manager_name}/early: {REMEMBERED}" in server.log(), what="the kill")
    assert outbox_rows(server, "early_kills") == 1
    server.stop()  # the kill is remembered on disk, not only in the consumer's memory
    server.start()

    setup = client.setup("early", f"touch {ran}; echo ran")
    final = client.wait_status("early", "cancelled", timeout=60)
    assert final["complete"] == "true"
    # the broker delivers the same setup again (a resend, a redelivery): still nothing runs
    client.publish("setup", {k: v for k, v in setup.items() if not k.startswith("acknowledge")})
    client.setup("sentinel", "echo sentinel")  # one queue, in order: handled after the resend
    assert client.wait_status("sentinel", "complete", timeout=60)["stdout"] == "sentinel\n"
    wait_for(lambda: server.log().count(f"job {manager_name}/early: duplicate submit") >= 1)
    assert not ran.exists()
    assert client.statuses("early").count("cancelled") == 1
    assert "complete" not in client.statuses("early")
    assert "setup of a job killed before it came; cancelled" in server.log()
    # used up: the cancelled record now stops any resend
    assert outbox_rows(server, "early_kills") == 0


def test_a_pool_worker_remembers_an_early_kill_across_its_restart(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    """Every worker hears a kill for a job nobody holds; a restart (a deploy) must not forget it."""
    worker = workers("w0")
    client = client_factory(manager_name)
    ran = tmp_path / "early-ran"
    client.publish("kill", {"job_id": "early"})
    remembered = f"job {manager_name}/early: kill for a job not held here; remembered"
    wait_for(lambda: remembered in worker.log(), what="the worker hearing the kill")
    assert outbox_rows(worker, "early_kills") == 1
    worker.stop()
    worker.start()
    client.setup("early", f"touch {ran}; echo ran")
    assert client.wait_status("early", "cancelled", timeout=60)["complete"] == "true"
    client.setup("sentinel", "echo sentinel")
    assert client.wait_status("sentinel", "complete", timeout=60)["stdout"] == "sentinel\n"
    settle(ear, "w0")
    assert not ran.exists()
    assert finals(client) == {"early": 1, "sentinel": 1}
    wait_for(
        lambda: outbox_rows(worker, "early_kills") == 0,
        what="the kill used up once its final committed",
    )
