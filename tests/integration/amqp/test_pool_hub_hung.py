"""A worker's supervisor hub that is alive but does not answer: treated as a dead one, in time.

Same setting as test_pool_hub.py (real workers started as users start them, the real broker,
Galaxy's client); a SIGSTOPped hub stands for any hung one. The workers run with a short hub
timeout so that the tests are quick (the default is 30 s): one set by ``$LWR_POOL_HUB_TIMEOUT``,
the other by the ``pool_hub_timeout`` option in its server.ini, as an operator sets it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from lwr.pool.hub_client import TIMEOUT_ENV
from tests.integration.amqp.pool_support import PoolEar, finals, ran_on, settle
from tests.integration.amqp.support import Client, WeblessServer, alive
from tests.integration.amqp.test_pool_hub import given_back, hub_of, pid_files, start_trees
from tests.integration.amqp.test_pool_orphans import processes_under
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

__all__ = ["pid_files"]  # a fixture of test_pool_hub, used here too

#: the hub's time to answer in these tests (seconds)
TIMEOUT = "3"


@pytest.fixture
def stop() -> Iterator[Callable[[psutil.Process], None]]:
    """SIGSTOP a hub; one still there after the test (it failed) is killed."""
    stopped: list[psutil.Process] = []

    def stop_it(hub: psutil.Process) -> None:
        stopped.append(hub)
        hub.suspend()
        wait_for(lambda: hub.status() == psutil.STATUS_STOPPED, what="the hub stopped")

    yield stop_it
    for hub in stopped:
        if hub.is_running():
            hub.kill()


def gone(process: psutil.Process) -> bool:
    return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def test_a_start_a_stopped_hub_never_answers_runs_once_under_a_new_hub(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    stop: Callable[[psutil.Process], None],
) -> None:
    victim = workers("victim", env={TIMEOUT_ENV: TIMEOUT})
    client = client_factory(manager_name)
    client.setup("warm", "echo warm")  # the worker's first job starts its hub
    assert client.wait_status("warm", "complete", timeout=60)["stdout"] == "warm\n"
    hung = hub_of(victim)
    stop(hung)
    client.setup("late", "echo once")  # its start waits on the stopped hub
    assert client.wait_status("late", "complete", timeout=60)["stdout"] == "once\n"
    settle(ear, "victim")
    assert finals(client) == {"warm": 1, "late": 1}
    assert given_back(victim, manager_name, "late")
    # the log line follows the commit the client heard: wait for it, not for a report
    wait_for(lambda: ran_on(victim, manager_name, "late"), what="late's final on the victim")
    assert "hangs (a request waited" in victim.log()
    assert gone(hung) and hub_of(victim).pid != hung.pid
    assert victim.process is not None and victim.process.poll() is None
    client.setup("after", "echo still working")
    assert client.wait_status("after", "complete", timeout=60)["stdout"] == "still working\n"
    settle(ear, "victim")
    assert finals(client) == {"warm": 1, "late": 1, "after": 1}
    assert processes_under(victim.directory) == []


def test_a_stopped_hub_with_jobs_running_dies_with_them_and_each_completes_once(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    pid_files: Callable[[str], Path],
    stop: Callable[[psutil.Process], None],
    tmp_path: Path,
) -> None:
    """No start waits on it: the worker's ping finds it. Each job's first run builds a process
    tree (with a ``setsid`` escapee) and never ends; its rerun only says "once"."""
    victim = workers("victim", pool_hub_timeout=TIMEOUT)
    client = client_factory(manager_name)
    trees = start_trees(client, pid_files, tmp_path)
    hung = hub_of(victim)
    assert all(hung in psutil.Process(pids[0]).parents() for pids in trees.values())
    stop(hung)
    every = [pid for pids in trees.values() for pid in pids]
    wait_for(lambda: not any(alive(pid) for pid in every), what="the stopped hub's job trees")
    for job in trees:
        assert client.wait_status(job, "complete", timeout=60)["stdout"] == "once\n"
        assert given_back(victim, manager_name, job)
    settle(ear, "victim")
    assert finals(client) == {"h1": 1, "h2": 1}
    assert gone(hung) and hub_of(victim).pid != hung.pid
    assert victim.process is not None and victim.process.poll() is None
    assert processes_under(victim.directory) == []
    assert all(len(pid_files(job).read_text().split()) == 4 for job in trees)  # built once
