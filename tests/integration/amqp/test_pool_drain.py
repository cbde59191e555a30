"""Scale-in: a pool worker told to stop (SIGTERM, a drain command) takes no new job, finishes or
hands back what it holds, says goodbye in its last load report and exits 0. Same setting as
test_pool.py: real workers, the real broker, Galaxy's client.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.amqp.pool_support import PoolEar, finals, ran_on, settle
from tests.integration.amqp.support import AMQP_URL, Client, WeblessServer, alive
from tests.integration.conftest import ServerFactory
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def test_sigterm_drains_finishes_what_is_held_and_exits_0(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
) -> None:
    leaving = workers("leaving", slots=3)  # a free slot while it drains: it must not be used
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
        # the worker logs its commit just after the client may have received the status
        wait_for(lambda i=index: ran_on(leaving, manager_name, f"held{i}"))
        wait_for(lambda i=index: ran_on(staying, manager_name, f"new{i}"))
    last = ear.last_words("leaving")
    assert last.draining and last.jobs_held == 0
    settle(ear, "staying")
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
    for index in range(2):  # first's attempt outlasts any start-up of second; a rerun is short
        pids = tmp_path / f"slow{index}.pids"
        client.setup(
            f"slow{index}",
            f"echo $$ >> {pids}; if [ $(wc -l < {pids}) -gt 1 ]; then sleep 3; else sleep 60; fi",
        )
    wait_for(lambda: first.log().count("started as") >= 2, what="first running two jobs")
    second = workers("second")  # idle: first holds every job
    ear.drain("first", timeout=0.5)
    assert first.process is not None and first.process.wait(30) == 0
    assert "given back to the pool (the drain timeout passed)" in first.log()
    # each file's first line is the attempt of first (second appends when it runs the job)
    handed_back = [int(_lines(tmp_path / f"slow{i}.pids")[0]) for i in range(2)]
    wait_for(lambda: not any(alive(pid) for pid in handed_back), what="first's jobs stopped")
    for index in range(2):  # run again by second, which then drains without a timeout
        client.wait_status(f"slow{index}", "running", timeout=30)
    wait_for(lambda: second.log().count("started as") >= 2, what="second running both")
    ear.drain("second")  # its own pool_drain_timeout (60 s): it finishes both first
    assert second.process is not None and second.process.wait(60) == 0
    for index in range(2):
        assert client.wait_status(f"slow{index}", "complete")["complete"] == "true"
        wait_for(lambda i=index: ran_on(second, manager_name, f"slow{i}"))
    assert finals(client) == {"slow0": 1, "slow1": 1}
    for worker_id in ("first", "second"):
        assert ear.last_words(worker_id).jobs_held == 0


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


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
    assert ear.last_words("http-worker").jobs_held == 0
    assert finals(client) == {"web": 1}
