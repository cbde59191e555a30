"""The elastic worker pool on the real RabbitMQ, driven by Galaxy's own MQ client (pulsar.client).

Workers are real LWR processes started as users start them (``paster serve server.ini``), each in
a directory of its own, all bound to one fresh manager name (so one fresh set of queues). What is
counted is what Galaxy would see: the status updates the client receives.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.amqp.pool_support import (
    PoolEar,
    close_connections_of,
    finals,
    long_job,
    pid_in,
    ran_on,
    settle,
)
from tests.integration.amqp.support import Client, WeblessServer, alive, queue_depth
from tests.integration.files_endpoint import wait_for
from tests.integration.metrics_support import scrape
from tests.integration.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

CRASH_ENV = "LWR_POOL_TEST_CRASH_AT"


# -- competing consumers ---------------------------------------------------------------------------


def test_a_burst_spreads_over_the_workers_and_every_job_ends_once(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
) -> None:
    pool = [workers(f"w{i}") for i in range(3)]
    client = client_factory(manager_name)
    jobs = [f"burst{i}" for i in range(18)]
    for index, job in enumerate(jobs):
        client.setup(job, f"sleep 1; echo out {index}")
    for index, job in enumerate(jobs):
        assert client.wait_status(job, "complete", timeout=90)["stdout"] == f"out {index}\n"
    settle(ear, "w0", "w1", "w2")
    assert finals(client) == {job: 1 for job in jobs}
    for worker in pool:  # prefetch = slots (2): nobody could take the whole burst
        assert any(ran_on(worker, manager_name, job) for job in jobs), worker.log()

    def totals() -> tuple[int, int]:
        reports = [r for r in (ear.latest(f"w{i}") for i in range(3)) if r is not None]
        assert all(r.slots == 2 and not r.draining for r in reports)
        return (
            sum(r.jobs_received_total for r in reports),
            sum(r.jobs_finished_total for r in reports),
        )

    ear.wait(lambda: totals() == (len(jobs), len(jobs)), what="the reports' totals")


# -- no job lost, none reported twice --------------------------------------------------------------


def test_kill_9_of_a_worker_holding_running_jobs_loses_none(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    doomed = workers("doomed")
    client = client_factory(manager_name)
    jobs = [f"k{i}" for i in range(4)]
    for index, job in enumerate(jobs):
        # long on doomed (its job directories are under workers/doomed), quick elsewhere
        marker = tmp_path / f"{job}.first"
        client.setup(
            job, f"case $PWD in */doomed/*) echo $$ > {marker}; sleep 60;; esac; echo out {index}"
        )
    # doomed holds two (its slots: the broker's prefetch) and runs them; two wait in the queue
    wait_for(lambda: doomed.log().count("started as") >= 2, what="doomed running two jobs")
    ear.wait(lambda: (r := ear.latest("doomed")) is not None and r.jobs_held == 2)
    assert queue_depth(manager_name, "setup") == 2
    held = [job for job in jobs if f"job {manager_name}/{job}: started as" in doomed.log()]
    first_pids = [int(wait_for(lambda j=job: pid_in(tmp_path / f"{j}.first"))) for job in held]
    doomed.kill9()
    survivor = workers("survivor")
    for index, job in enumerate(jobs):
        assert client.wait_status(job, "complete", timeout=60)["stdout"] == f"out {index}\n"
    assert all(ran_on(survivor, manager_name, job) for job in held)
    # doomed's own attempts died with it (lwr.pool.tether; whole trees: test_pool_orphans.py)
    wait_for(lambda: not any(alive(pid) for pid in first_pids), what="stale attempts stopped")
    doomed.start()  # and its restart gives up what its store still says about them
    wait_for(lambda: doomed.log().count("in an earlier life of this worker") >= 2)
    settle(ear, "survivor", "doomed")
    assert finals(client) == {job: 1 for job in jobs}


@pytest.mark.parametrize("moment", ["before_commit", "after_commit"])
def test_kill_9_at_the_final_status_commit(
    moment: str,
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
) -> None:
    """Die with the final status and the ack sent but not committed, or just committed.

    Before the commit the broker has neither (the job runs again elsewhere, one final status);
    after it, both (nobody runs it again). The restarted worker then gives up its copy of the job
    and says nothing more about it.
    """
    first = workers("first", env={CRASH_ENV: f"{moment}:edge"})
    client = client_factory(manager_name)
    client.setup("edge", "echo edge")
    assert first.process is not None
    assert first.process.wait(30) == -signal.SIGKILL
    assert "test crash point" in first.log()
    second = workers("second")
    client.setup("sentinel", "echo sentinel")
    assert client.wait_status("edge", "complete", timeout=60)["stdout"] == "edge\n"
    client.wait_status("sentinel", "complete", timeout=60)
    settle(ear, "second")
    assert ran_on(second, manager_name, "edge") == (moment == "before_commit")
    first.env = {k: v for k, v in (first.env or {}).items() if k != CRASH_ENV}
    first.start()  # the same directory: its store still holds its copy of "edge"
    assert f"job {manager_name}/edge: complete in an earlier life" in first.log()
    client.setup("after", "echo after")
    client.wait_status("after", "complete", timeout=60)
    settle(ear, "first", "second")
    assert finals(client) == {"edge": 1, "sentinel": 1, "after": 1}


# -- kill and status reach the holder --------------------------------------------------------------


def test_a_kill_reaches_the_worker_holding_the_job(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    pool = [workers(f"w{i}") for i in range(3)]
    client = client_factory(manager_name)
    jobs = [f"long{i}" for i in range(6)]  # two per worker: the prefetch limit spreads them
    for job in jobs:
        client.setup(job, long_job(tmp_path / f"{job}.pid"))
    for job in jobs:
        client.wait_status(job, "running")
    pids = {job: int(wait_for(lambda j=job: pid_in(tmp_path / f"{j}.pid"))) for job in jobs}
    # one kill for a job nobody holds first: the broker deals kills round-robin like setups,
    # and this one shifts the deal so that kills land on other workers than the holders
    client.publish("kill", {"job_id": "ghost"})
    for job in jobs:
        client.publish("kill", {"job_id": job})
    for job in jobs:
        assert client.wait_status(job, "cancelled", timeout=30)["complete"] == "true"
        wait_for(lambda j=job: not alive(pids[j]), what=f"{job}'s sleep to be killed")
    logs = {f"w{i}": worker.log() for i, worker in enumerate(pool)}
    crossed = [
        (holder, line)
        for holder, text in logs.items()
        for line in text.splitlines()
        if ": kill (received by worker " in line and f"worker {holder})" not in line
    ]
    assert crossed, "no kill went through another worker than the holder"
    # a kill that comes before its job: remembered by the pool, the job never runs
    client.publish("kill", {"job_id": "early"})
    remembered = f"job {manager_name}/early: kill for a job not held here; remembered"
    wait_for(lambda: all(remembered in w.log() for w in pool), what="every worker heard the kill")
    client.setup("early", f"touch {tmp_path / 'early-ran'}")
    assert client.wait_status("early", "cancelled", timeout=30)["complete"] == "true"
    settle(ear, "w0", "w1", "w2")
    assert not (tmp_path / "early-ran").exists()
    assert finals(client) == {**{job: 1 for job in jobs}, "early": 1}


def test_a_status_request_is_answered_for_any_job(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    for index in range(2):
        workers(f"w{index}")
    # by the way: each worker asks the broker to let it hold a setup for a week (long jobs)
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_consumers", "queue_name", "arguments"],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    ).stdout
    setups = [line for line in listing.splitlines() if f"pulsar_{manager_name}__setup" in line]
    assert len(setups) == 2 and all("x-consumer-timeout" in line for line in setups), setups
    assert all("604800000" in line for line in setups)
    client = client_factory(manager_name)
    client.setup("done", "echo done")
    client.setup("busy", long_job(tmp_path / "busy.pid"))
    client.wait_status("done", "complete")
    client.wait_status("busy", "running")
    for job in ("done", "busy"):
        before = len(client.statuses(job))
        client.publish("status", {"job_id": job})
        wait_for(lambda j=job, n=before: len(client.statuses(j)) > n, what=f"{job} answered")
    assert client.statuses("busy")[-1] == "running"
    assert client.statuses("done")[-1] == "complete"
    client.publish("kill", {"job_id": "busy"})
    client.wait_status("busy", "cancelled", timeout=30)


def test_a_worker_that_loses_its_connection_gives_its_jobs_up(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    """The broker requeues a dropped connection's setups, so the worker must stop their runs.

    Only this worker's own connections are closed (``rabbitmqctl close_connection``); the shared
    broker keeps running for everyone else.
    """
    worker = workers("cut")
    client = client_factory(manager_name)
    for index in range(2):  # the first attempt runs long, an attempt run again is quick
        marker = tmp_path / f"c{index}.first"
        client.setup(
            f"c{index}",
            f"if [ -e {marker} ]; then echo again {index}; else echo $$ > {marker}; sleep 60; fi",
        )
    wait_for(lambda: worker.log().count("started as") >= 2, what="two jobs running")
    pids = [int(wait_for(lambda i=i: pid_in(tmp_path / f"c{i}.first"))) for i in range(2)]
    assert worker.process is not None
    close_connections_of(worker.process.pid)
    for index in range(2):
        assert client.wait_status(f"c{index}", "complete", timeout=60)["stdout"] == (
            f"again {index}\n"
        )
    wait_for(lambda: not any(alive(pid) for pid in pids), what="the first attempts stopped")
    assert "given back to the pool (the broker connection ended)" in worker.log()
    settle(ear, "cut")
    assert finals(client) == {"c0": 1, "c1": 1}


# -- /metrics --------------------------------------------------------------------------------------


def test_a_webless_worker_serves_metrics_on_its_own_port(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
) -> None:
    port = free_port()
    workers("measured", metrics_port=str(port))
    client = client_factory(manager_name)
    for index in range(2):
        client.setup(f"m{index}", f"sleep 1; echo {'x' * 99} > out{index}.txt")
    for index in range(2):
        client.wait_status(f"m{index}", "complete")
    settle(ear, "measured")
    report = ear.latest("measured")
    assert report is not None and report.endpoint == f"http://127.0.0.1:{port}/"
    samples = scrape(f"{report.endpoint}metrics")
    manager = (("manager", manager_name),)
    assert samples[("lwr_jobs", (*manager, ("state", "complete")))] == 2
    assert samples[("lwr_jobs", (*manager, ("state", "running")))] == 0
    assert samples[("lwr_job_queue_wait_seconds_count", manager)] == 2
    assert samples[("lwr_job_run_seconds_count", manager)] == 2
    assert samples[("lwr_job_run_seconds_bucket", (("le", "1.0"), *manager))] == 0  # slept 1 s
    assert samples[("lwr_pool_slots", manager)] == 2
    assert samples[("lwr_pool_jobs_held", manager)] == 0
    assert samples[("lwr_staged_bytes_total", (("direction", "in"), *manager))] == 0
