"""The elastic worker pool on the real RabbitMQ, driven by Galaxy's own MQ client (pulsar.client).

Workers are real LWR processes started as users start them (``paster serve server.ini``), each in
a directory of its own, all bound to one fresh manager name (so one fresh set of queues). What is
counted is what Galaxy would see: the status updates the client receives.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.amqp.pool_support import PoolEar, finals, ran_on, start_worker
from tests.integration.amqp.support import AMQP_URL, Client, WeblessServer, alive, queue_depth
from tests.integration.conftest import ServerFactory
from tests.integration.files_endpoint import wait_for
from tests.integration.metrics_support import scrape
from tests.integration.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

CRASH_ENV = "LWR_POOL_TEST_CRASH_AT"


@pytest.fixture
def workers(tmp_path: Path, manager_name: str) -> Iterator[Callable[..., WeblessServer]]:
    """Start pool workers of this test's manager; each is stopped (SIGINT: at once) at the end."""
    started: list[WeblessServer] = []

    def start(worker_id: str, **options: object) -> WeblessServer:
        server = start_worker(tmp_path / "workers", manager_name, worker_id, **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
            server.process.wait(20)


@pytest.fixture
def ear(manager_name: str) -> Iterator[PoolEar]:
    ear = PoolEar(manager_name)
    yield ear
    ear.close()


def _settle(ear: PoolEar, *worker_ids: str) -> None:
    """Wait until every named worker reports holding nothing (no final status still owed)."""
    ear.wait(lambda: ear.idle(*worker_ids), what=f"{worker_ids} idle")


def _long_job(pid_file: Path, seconds: int = 60) -> str:
    return f"sleep {seconds} & echo $! > {pid_file}; wait"


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
    _settle(ear, "w0", "w1", "w2")
    assert finals(client) == {job: 1 for job in jobs}
    for worker in pool:  # prefetch = slots (2): nobody could take the whole burst
        assert any(ran_on(worker, manager_name, job) for job in jobs), worker.log()
    reports = [ear.latest(f"w{i}") for i in range(3)]
    assert all(r is not None and r.slots == 2 and not r.draining for r in reports)
    assert sum(r.jobs_received_total for r in reports if r) == len(jobs)
    assert sum(r.jobs_finished_total for r in reports if r) == len(jobs)


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
    first_pids = [int(wait_for(lambda j=job: _pid(tmp_path / f"{j}.first"))) for job in held]
    doomed.kill9()
    survivor = workers("survivor")
    for index, job in enumerate(jobs):
        assert client.wait_status(job, "complete", timeout=60)["stdout"] == f"out {index}\n"
    assert all(ran_on(survivor, manager_name, job) for job in held)
    # doomed's own attempts still run (their process groups outlive it) until it comes back
    assert all(alive(pid) for pid in first_pids)
    doomed.start()
    wait_for(lambda: not any(alive(pid) for pid in first_pids), what="stale attempts stopped")
    _settle(ear, "survivor", "doomed")
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
    _settle(ear, "second")
    assert ran_on(second, manager_name, "edge") == (moment == "before_commit")
    first.env = {k: v for k, v in (first.env or {}).items() if k != CRASH_ENV}
    first.start()  # the same directory: its store still holds its copy of "edge"
    assert f"job {manager_name}/edge: complete in an earlier life" in first.log()
    client.setup("after", "echo after")
    client.wait_status("after", "complete", timeout=60)
    _settle(ear, "first", "second")
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
        client.setup(job, _long_job(tmp_path / f"{job}.pid"))
    for job in jobs:
        client.wait_status(job, "running")
    pids = {job: int(wait_for(lambda j=job: _pid(tmp_path / f"{j}.pid"))) for job in jobs}
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
    _settle(ear, "w0", "w1", "w2")
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
    client.setup("busy", _long_job(tmp_path / "busy.pid"))
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


def _pid(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


# -- drain -----------------------------------------------------------------------------------------


def test_sigterm_drains_finishes_what_is_held_and_exits_0(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
) -> None:
    leaving = workers("leaving")
    client = client_factory(manager_name)
    for index in range(2):
        client.setup(f"held{index}", f"sleep 2; echo held {index}")
    wait_for(lambda: leaving.log().count("started as") >= 2, what="leaving running two jobs")
    assert leaving.process is not None
    leaving.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "setup consumer cancelled (draining)" in leaving.log())
    for index in range(2):  # taken by the worker that stays, not by the one leaving
        client.setup(f"new{index}", f"echo new {index}")
    staying = workers("staying")
    assert leaving.process.wait(60) == 0
    for index in range(2):
        assert client.wait_status(f"held{index}", "complete")["stdout"] == f"held {index}\n"
        assert client.wait_status(f"new{index}", "complete")["stdout"] == f"new {index}\n"
        assert ran_on(leaving, manager_name, f"held{index}")
        assert ran_on(staying, manager_name, f"new{index}")
    last = ear.latest("leaving")
    assert last is not None and last.gone and last.draining and last.jobs_held == 0
    _settle(ear, "staying")
    assert set(finals(client).values()) == {1}


def test_a_drain_command_hands_jobs_back_after_its_timeout(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    first = workers("first")
    client = client_factory(manager_name)
    for index in range(2):
        client.setup(f"slow{index}", f"echo $$ >> {tmp_path / f'slow{index}.pids'}; sleep 3")
    wait_for(lambda: first.log().count("started as") >= 2, what="first running two jobs")
    second = workers("second")  # idle: first holds every job
    ear.drain("first", timeout=0.5)
    assert first.process is not None and first.process.wait(30) == 0
    assert "given back to the pool (the drain timeout passed)" in first.log()
    handed_back = [int(line) for i in range(2) for line in _lines(tmp_path / f"slow{i}.pids")]
    wait_for(lambda: not any(alive(pid) for pid in handed_back[:2]), what="first's jobs stopped")
    for index in range(2):  # run again by second, which then drains without a timeout
        client.wait_status(f"slow{index}", "running", timeout=30)
    wait_for(lambda: second.log().count("started as") >= 2, what="second running both")
    ear.drain("second")  # its own pool_drain_timeout (60 s): it finishes both first
    assert second.process is not None and second.process.wait(60) == 0
    for index in range(2):
        assert client.wait_status(f"slow{index}", "complete")["complete"] == "true"
        assert ran_on(second, manager_name, f"slow{index}")
    assert finals(client) == {"slow0": 1, "slow1": 1}
    reports = [ear.latest(w) for w in ("first", "second")]
    assert all(r is not None and r.gone for r in reports)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


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
    _settle(ear, "measured")
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
    pids = [int(wait_for(lambda i=i: _pid(tmp_path / f"c{i}.first"))) for i in range(2)]
    assert worker.process is not None
    close_connections_of(worker.process.pid)
    for index in range(2):
        assert client.wait_status(f"c{index}", "complete", timeout=60)["stdout"] == (
            f"again {index}\n"
        )
    wait_for(lambda: not any(alive(pid) for pid in pids), what="the first attempts stopped")
    assert "given back to the pool (the broker connection ended)" in worker.log()
    _settle(ear, "cut")
    assert finals(client) == {"c0": 1, "c1": 1}


def close_connections_of(pid: int) -> None:
    """Close, on the broker's side, every AMQP connection of process ``pid``."""
    import psutil

    ports = {
        str(c.laddr.port)
        for c in psutil.Process(pid).net_connections("tcp")
        if c.raddr and c.raddr.port == 5672
    }
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "peer_port"],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    ).stdout
    broker_pids = [
        line.split()[0]
        for line in listing.splitlines()
        if len(line.split()) == 2 and line.split()[1] in ports
    ]
    assert broker_pids, f"the broker lists no connection of {pid} (ports {ports})"
    for broker_pid in broker_pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", broker_pid, "test"],
            capture_output=True,
            timeout=60,
        )


def test_a_worker_with_an_http_face_drains_on_sigterm_too(
    manager_name: str,
    lwr_server_factory: ServerFactory,
    client_factory: Callable[..., Client],
    ear: PoolEar,
) -> None:
    server = lwr_server_factory(
        app_options={
            "message_queue_url": AMQP_URL,
            "pool_worker": "true",
            "pool_worker_id": "http-worker",
            "pool_heartbeat_seconds": "0.5",
        },
        managers_ini=f"[manager:{manager_name}]\ntype = queued_python\nmax_concurrent_jobs = 1\n",
    )
    client = client_factory(manager_name)
    client.setup("web", "sleep 1; echo web")
    wait_for(lambda: "started as" in server.log(), what="the job running")
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(60) == 0
    assert client.wait_status("web", "complete")["stdout"] == "web\n"
    last = ear.latest("http-worker")
    assert last is not None and last.gone
    assert finals(client) == {"web": 1}
