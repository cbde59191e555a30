"""A kill the pool took before a worker existed: that worker must not run the job either.

Galaxy's kill and setup travel on two queues the broker does not order. The worker that takes a
kill before its setup passes it to the workers connected then; a worker started (or restarted on a
fresh disk) afterwards, or cut off from the broker meanwhile, never heard that broadcast. These
tests make exactly such a worker the only one able to take the setup, over the real RabbitMQ with
Galaxy's own client and real workers, and check that the job never runs and Galaxy hears one
final status, ``cancelled``. The pool's kill ledger (``lwr.pool.kill_ledger``) makes them pass.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lwr.pool.kill_ledger import ledger_name
from tests.integration.amqp.pool_support import (
    PoolEar,
    close_connections_of,
    finals,
    long_job,
    prefix_of,
    ran_on,
    settle,
)
from tests.integration.amqp.support import AMQP_URL, Client, WeblessServer, queue_depth
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

kombu = pytest.importorskip("kombu")


def _remembered(manager: str, job_id: str) -> str:
    return f"job {manager}/{job_id}: kill for a job not held here; remembered"


def test_a_worker_started_after_the_kill_does_not_run_the_job(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    """The balancer's case: a new worker for a backlog that holds a job killed in the meantime."""
    first = workers("first", slots=1)
    client = client_factory(manager_name)
    client.setup("blocker", long_job(tmp_path / "blocker.pid"))  # first's only slot, from now on
    client.wait_status("blocker", "running")
    client.publish("kill", {"job_id": "early"})
    wait_for(lambda: _remembered(manager_name, "early") in first.log(), what="first hears it")
    ran = tmp_path / "early-ran"
    client.setup("early", f"touch {ran}; echo ran")
    # first has no room (its prefetch is its one slot): the setup waits for a worker to come
    wait_for(lambda: queue_depth(manager_name, "setup") == 1, what="the setup waiting")
    late = workers("late", slots=1)  # consumes the waiting setup as soon as it consumes at all
    final = client.wait_status("early", "cancelled", timeout=60)
    assert final["complete"] == "true"
    assert f"job {manager_name}/early: killed before it started" in late.log()
    wait_for(lambda: ran_on(late, manager_name, "early"), what="late's log of its final status")
    client.publish("kill", {"job_id": "blocker"})
    client.wait_status("blocker", "cancelled", timeout=60)
    settle(ear, "first", "late")
    assert not ran.exists()
    assert finals(client) == {"early": 1, "blocker": 1}
    assert client.statuses("early").count("cancelled") == 1
    assert "complete" not in client.statuses("early")


def test_the_kill_outlives_the_worker_that_took_it(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    """The only worker that heard the kills dies with its disk before their setups come."""
    taker = workers("taker")
    client = client_factory(manager_name)
    doomed = [f"early{i}" for i in range(12)]  # a burst: confirms of several entries at once
    for job in doomed:
        client.publish("kill", {"job_id": job})
    for job in doomed:
        wait_for(lambda j=job: _remembered(manager_name, j) in taker.log(), what=f"{job} heard")
    wait_for(lambda: queue_depth(manager_name, "kill") == 0, what="every kill acknowledged")
    taker.kill9()
    shutil.rmtree(taker.directory)  # a reclaimed instance: its outbox is gone with it
    for job in doomed:
        client.setup(job, f"touch {tmp_path / job}; echo ran")
    newcomer = workers("newcomer")
    for job in doomed:
        assert client.wait_status(job, "cancelled", timeout=60)["complete"] == "true"
    client.setup("sentinel", "echo sentinel")  # the newcomer runs other jobs as usual
    assert client.wait_status("sentinel", "complete", timeout=60)["stdout"] == "sentinel\n"
    settle(ear, "newcomer")
    assert not any((tmp_path / job).exists() for job in doomed)
    wait_for(lambda: all(ran_on(newcomer, manager_name, job) for job in doomed), what="its log")
    assert finals(client) == {**{job: 1 for job in doomed}, "sentinel": 1}
    assert "kill read from the pool's ledger (taken by worker taker)" in newcomer.log()


@pytest.fixture
def broker_user() -> Iterator[BrokerUser]:
    """A RabbitMQ user of the test's own, whose access the test can take away and give back."""
    user = BrokerUser(f"lwrtest-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
    user.ctl("add_user", user.name, user.password)
    user.allow(True)
    yield user
    user.ctl("delete_user", user.name)


class BrokerUser:
    def __init__(self, name: str, password: str) -> None:
        self.name, self.password = name, password
        self.url = f"amqp://{name}:{password}@127.0.0.1:5672//"

    def ctl(self, *args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    def allow(self, allowed: bool) -> None:
        if allowed:
            self.ctl("set_permissions", "-p", "/", self.name, ".*", ".*", ".*")
        else:
            self.ctl("clear_permissions", "-p", "/", self.name)


def test_a_worker_cut_off_while_the_kill_came_learns_it_when_it_reconnects(
    manager_name: str,
    broker_user: BrokerUser,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    """A network partition, made exact: the broker refuses the worker while the kill goes round."""
    first = workers("first", slots=1)
    client = client_factory(manager_name)
    client.setup("blocker", long_job(tmp_path / "blocker.pid"))  # first's only slot
    client.wait_status("blocker", "running")
    cut = workers("cut", slots=1, message_queue_url=broker_user.url)
    assert cut.process is not None
    broker_user.allow(False)
    close_connections_of(cut.process.pid)
    wait_for(lambda: "pool worker lost the broker" in cut.log(), what="cut cut off")
    client.publish("kill", {"job_id": "early"})
    wait_for(lambda: _remembered(manager_name, "early") in first.log(), what="first hears it")
    ran = tmp_path / "early-ran"
    client.setup("early", f"touch {ran}; echo ran")
    wait_for(lambda: queue_depth(manager_name, "setup") == 1, what="the setup waiting")
    assert _remembered(manager_name, "early") not in cut.log()  # it did not hear the broadcast
    broker_user.allow(True)  # the next attempt (back-off: 15 s at most) gets through
    assert client.wait_status("early", "cancelled", timeout=60)["complete"] == "true"
    wait_for(lambda: ran_on(cut, manager_name, "early"), what="cut's log of its final status")
    client.publish("kill", {"job_id": "blocker"})
    client.wait_status("blocker", "cancelled", timeout=60)
    settle(ear, "first", "cut")
    assert not ran.exists()
    assert finals(client) == {"early": 1, "blocker": 1}


def test_a_worker_that_cannot_read_the_ledger_takes_no_setup(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
) -> None:
    """Fail closed: without the ledger (here: a plain queue squatting its name, as a broker
    without streams refuses it) a worker could run a killed job, so it takes none."""
    ledger = ledger_name(prefix_of(manager_name))
    with kombu.Connection(AMQP_URL) as connection:
        connection.channel().queue_declare(ledger, durable=True, auto_delete=False)
    client = client_factory(manager_name)
    blocked = workers("blocked", start=False)
    refused = "cannot declare the pool's kill ledger"
    with pytest.raises(RuntimeError, match="did not start consuming"):
        blocked.start(timeout=5)
    tries = blocked.log().count(refused)
    assert tries >= 1
    client.setup("waiting", "echo waited")  # its queue exists: the worker declared it first
    wait_for(lambda: blocked.log().count(refused) > tries, timeout=30, what="another try")
    assert queue_depth(manager_name, "setup") == 1  # nobody took it
    assert client.statuses("waiting") == []
    with kombu.Connection(AMQP_URL) as connection:
        connection.channel().queue_delete(ledger)
    # the next attempt (back-off: 15 s at most) declares the stream and goes on as usual
    assert client.wait_status("waiting", "complete", timeout=60)["stdout"] == "waited\n"
    settle(ear, "blocked")
    assert finals(client) == {"waiting": 1}
