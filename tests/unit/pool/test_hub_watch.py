"""A hub that is alive but does not answer (lwr.pool.hub_client's watchdog), with real processes.

A stopped hub (SIGSTOP) stands for any hung one: stuck in a system call, deadlocked. It must be
handled as a dead hub within the time limit: killed, its jobs' trees gone, the leases given up
(told once), a waiting start refused only after that; a hub that answers is left alone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.pool import hub_client
from lwr.pool.hub_client import HUB_TIMEOUT, HubLostError, hub_timeout
from tests.unit.pool.test_hub import TREE, Worker, wait_gone

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds are Linux's"),
    pytest.mark.timeout(60),
]

#: short, so that the tests are quick; the watchdog looks every quarter of it
TIMEOUT = 1.0


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    monkeypatch.setenv(hub_client.TIMEOUT_ENV, str(TIMEOUT))
    made = Worker(tmp_path)
    assert made.hub.timeout == TIMEOUT
    yield made
    made.close()


def test_a_start_a_stopped_hub_never_answers_fails_once_the_hub_is_killed_and_the_leases_went(
    worker: Worker,
) -> None:
    hub = worker.hub.process
    os.kill(hub.pid, signal.SIGSTOP)
    failures: list[tuple[BaseException, int]] = []

    def start() -> None:
        try:
            worker.start("late", "touch ran")
        except OSError as exc:
            failures.append((exc, len(worker.lost)))

    starter = threading.Thread(target=start)
    starter.start()
    starter.join(30)
    assert not starter.is_alive() and len(failures) == 1
    error, losses_told = failures[0]
    assert isinstance(error, HubLostError) and losses_told == 1
    assert worker.hub.hung and hub.wait(10) == -signal.SIGKILL  # a stopped process dies of it
    assert not (worker.tmp_path / "late" / "ran").exists()
    assert worker.lost == [[]]


def test_a_stopped_hub_with_jobs_running_is_found_by_its_ping_and_its_jobs_die(
    worker: Worker,
) -> None:
    """No start waits: only the ping sees it (else the jobs' ends would never be reported)."""
    first, second = worker.start("a", TREE), worker.start("b", TREE)
    pids = worker.pids("a", 4) + worker.pids("b", 4)
    os.kill(worker.hub.process.pid, signal.SIGSTOP)
    assert worker.hub.wait_handled(30)
    assert worker.hub.hung and worker.hub.process.returncode == -signal.SIGKILL
    assert wait_gone(pids) == [] and worker.lost == [[]]  # told once, every process gone first
    for child in (first, second):  # cut short: never shows as ended, so nothing reports it
        assert child.wait(1) == -signal.SIGKILL and child.poll() is None and child.lost


def test_a_hub_that_answers_is_left_alone_while_its_jobs_outlast_the_timeout(
    worker: Worker,
) -> None:
    child = worker.start("slow", f"sleep {4 * TIMEOUT}; exit 3")  # pinged several times
    assert child.wait(30) == 3 and not child.lost
    assert not worker.hub.hung and not worker.hub.lost.is_set() and worker.lost == []
    assert worker.start("next", "exit 0").wait(20) == 0


def test_the_timeout_comes_from_the_option_or_the_environment_when_a_positive_number() -> None:
    assert hub_timeout({}) == HUB_TIMEOUT == 30.0
    assert hub_timeout({hub_client.TIMEOUT_ENV: "2.5"}) == 2.5
    assert hub_timeout({}, configured=7.0) == 7.0  # the pool_hub_timeout option
    assert hub_timeout({hub_client.TIMEOUT_ENV: "2.5"}, configured=7.0) == 2.5  # the variable wins
    for bad in ("0", "-1", "nan", "inf", "soon"):
        assert hub_timeout({hub_client.TIMEOUT_ENV: bad}) == HUB_TIMEOUT
