"""Galaxy's resend of a setup it saw no acknowledgement for: the pool runs the job once.

Galaxy's client with ``amqp_acknowledge`` publishes the same setup again (same
``acknowledge_uuid``, plus ``force_noack``) every ``amqp_ack_republish_time`` seconds until a
worker's acknowledgement reply reaches it; a reply lost, or a setup waiting in a backlog longer
than that, means copies in the ``setup`` queue. Workers compete for that queue, so a copy reaches
any worker: one holding nothing, one started afterwards, one restarted on a fresh disk. These
tests publish the copy exactly as the client's resend does, over the real RabbitMQ with real
workers, and count what Galaxy would see: the job runs once, and one final status comes back.
The pool's record of the setups it took (``lwr.pool.resends``) makes them pass.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lwr.pool.resends import DELAY_ENV
from tests.integration.amqp.pool_support import PoolEar, finals, ran_on, settle
from tests.integration.amqp.support import Client, WeblessServer, queue_depth
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def _galaxy(manager: str, client_factory: Callable[..., Client], tmp_path: Path) -> Client:
    client = client_factory(
        manager, amqp_acknowledge=True, persistence_directory=str(tmp_path / "client")
    )
    client.manager.ensure_has_ack_consumers()
    return client


def _resend(client: Client, body: dict[str, Any]) -> None:
    """What the client's republisher sends: the very message again, without a new uuid."""
    assert "acknowledge_uuid" in body
    client.publish("setup", {**body, "force_noack": True})


def _ran(marker: Path) -> int:
    return marker.read_text().count("ran\n") if marker.exists() else 0


def test_a_resend_reaching_another_worker_while_the_job_runs_is_not_run(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    holder = workers("holder", slots=1)
    client = _galaxy(manager_name, client_factory, tmp_path)
    marker, go = tmp_path / "marker", tmp_path / "go"
    body = client.setup("held", f"echo ran >> {marker}; while [ ! -e {go} ]; do sleep 0.2; done")
    client.wait_status("held", "running")
    _resend(client, body)  # holder's only slot is taken: the copy waits for the next worker
    wait_for(lambda: queue_depth(manager_name, "setup") == 1, what="the copy waiting")
    other = workers("other", slots=1)
    wait_for(lambda: queue_depth(manager_name, "setup") == 0, what="other takes the copy")
    settle_copy = f"job {manager_name}/held: a copy of a setup taken before"
    wait_for(lambda: settle_copy in other.log() or _ran(marker) > 1, what="other's decision")
    go.touch()
    client.wait_status("held", "complete", timeout=60)
    settle(ear, "holder", "other")
    assert _ran(marker) == 1
    assert finals(client) == {"held": 1}
    assert ran_on(holder, manager_name, "held") and not ran_on(other, manager_name, "held")


@pytest.mark.parametrize("restart", ["none", "restart", "kill9_and_fresh_worker"])
def test_a_resend_after_the_job_finished_is_not_run(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
    restart: str,
) -> None:
    first = workers("first", slots=1)
    client = _galaxy(manager_name, client_factory, tmp_path)
    marker = tmp_path / "marker"
    body = client.setup("done", f"echo ran >> {marker}")
    client.wait_status("done", "complete", timeout=60)
    wait_for(lambda: ran_on(first, manager_name, "done"), what="the final committed")
    names = ["first"]
    if restart == "restart":  # the same worker, same disk, a new process (a new broker session)
        assert first.process is not None
        first.process.send_signal(signal.SIGINT)
        first.process.wait(30)
        first.start()
    elif restart == "kill9_and_fresh_worker":  # only a worker that never saw the job is left
        first.kill9()
        workers("fresh", slots=1)
        names = ["fresh"]
    _resend(client, body)
    _resend(client, body)
    wait_for(lambda: queue_depth(manager_name, "setup") == 0, what="the copies taken")
    settle(ear, *names)
    time.sleep(2)  # a copy run again would append to the marker within this
    assert _ran(marker) == 1
    assert finals(client) == {"done": 1}


def test_a_redelivered_setup_of_a_worker_killed_while_holding_it_still_runs(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    """The lease still works with acknowledgements: the claimed setup itself comes back from a
    worker killed while holding it, and another worker runs it (nothing lost)."""
    doomed = workers("doomed", slots=1)
    client = _galaxy(manager_name, client_factory, tmp_path)
    marker = tmp_path / "marker"
    client.setup("lease", f"echo ran >> {marker}; case $PWD in */doomed/*) sleep 60;; esac")
    wait_for(lambda: _ran(marker) == 1, what="doomed running it")
    doomed.kill9()
    survivor = workers("survivor", slots=1)
    client.wait_status("lease", "complete", timeout=60)
    settle(ear, "survivor")
    assert ran_on(survivor, manager_name, "lease")
    assert _ran(marker) == 2  # once on doomed (killed), once on survivor
    assert finals(client) == {"lease": 1}


def test_copies_taken_at_once_by_two_idle_workers_run_once(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    """The original and its copy back to back: the broker hands one to each idle worker, neither
    has read a claim yet, both claim; the first claim in the stream wins on both."""
    race = {DELAY_ENV: "1"}  # each worker pauses before claiming: both check, then both claim
    pool = [workers("left", slots=1, env=race), workers("right", slots=1, env=race)]
    client = _galaxy(manager_name, client_factory, tmp_path)
    marker = tmp_path / "marker"
    rounds = [f"twin{i}" for i in range(3)]
    for job in rounds:
        _resend(client, client.setup(job, f"echo ran >> {marker}.{job}; sleep 1"))
    for job in rounds:
        client.wait_status(job, "complete", timeout=60)
    settle(ear, "left", "right")
    time.sleep(2)
    assert [_ran(Path(f"{marker}.{job}")) for job in rounds] == [1] * len(rounds)
    assert finals(client) == {job: 1 for job in rounds}
    logs = [w.log() for w in pool]
    raced = sum(log.count("a copy of a setup taken before") for log in logs)
    joined = sum(log.count("setup received again while held") for log in logs)
    assert raced >= 1  # the first pair at least: both workers idle, both claimed
    assert raced + joined == len(rounds)  # every copy answered, none left unacknowledged
    assert not any("lost the broker" in log for log in logs)  # no commit broken by a copy


def test_a_copy_waiting_behind_its_own_job_does_not_take_the_slot_for_good(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    tmp_path: Path,
) -> None:
    """The copy waits for the only slot, held by its own job; the broker delivers it as soon as
    the job's final is acked, while the worker still waits for that commit. It must be answered
    then too, else the slot stays taken and the next job never runs."""
    only = workers("only", slots=1)
    client = _galaxy(manager_name, client_factory, tmp_path)
    marker, go = tmp_path / "marker", tmp_path / "go"
    for round_ in range(3):
        job = f"own{round_}"
        body = client.setup(job, f"echo ran >> {marker}.{job}; while [ ! -e {go}.{job} ]; "
                                 "do sleep 0.2; done")  # fmt: skip
        client.wait_status(job, "running")
        _resend(client, body)
        wait_for(lambda: queue_depth(manager_name, "setup") == 1, what="the copy waiting")
        Path(f"{go}.{job}").touch()
        client.wait_status(job, "complete", timeout=60)
    client.setup("next", "echo next")
    assert client.wait_status("next", "complete", timeout=30)["stdout"] == "next\n"
    settle(ear, "only")
    assert [_ran(Path(f"{marker}.own{r}")) for r in range(3)] == [1, 1, 1]
    assert finals(client) == {"own0": 1, "own1": 1, "own2": 1, "next": 1}
    assert "lost the broker" not in only.log()
