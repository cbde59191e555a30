"""The worker's one supervisor hub (lwr.pool.hub): its death, a cancel, leftovers, job by job.

Same setting as test_pool_orphans.py: real workers started as users start them, the real broker,
Galaxy's client. Each job here is a process tree with a ``setsid`` escapee (it leaves the job's
session and process group in a subshell that exits, so only its job's subreaper still finds it).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.amqp.pool_support import PoolEar, finals, ran_on, settle
from tests.integration.amqp.support import Client, WeblessServer, alive
from tests.integration.amqp.test_pool_orphans import processes_under
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def tree(pids: Path) -> str:
    """Four processes, pids appended to ``pids``: the script, a background child, an escapee
    of a subshell's ``setsid``, a foreground child."""
    return (
        f"echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; "
        f"( setsid sleep 300 & echo $! >> {pids} ); sleep 300 & echo $! >> {pids}; wait"
    )


def recorded(path: Path, count: int) -> list[int]:
    """The first ``count`` pids a job wrote, once it wrote them and its escapee escaped."""

    def written() -> list[int]:
        pids = [int(p) for p in path.read_text().split()] if path.exists() else []
        return pids if len(pids) >= count else []

    pids = wait_for(written, what=f"{count} pids in {path.name}")[:count]
    escapee = pids[2]
    wait_for(lambda: os.getsid(escapee) == escapee, what="the escapee's own session")
    return pids


def hub_of(worker: WeblessServer) -> psutil.Process:
    """The worker's supervisor hub: its child running lwr.pool.hub."""
    assert worker.process is not None

    def find() -> psutil.Process | None:
        for child in psutil.Process(worker.process.pid).children():  # type: ignore[union-attr]
            if "import hub" in " ".join(child.cmdline()):
                return child
        return None

    hub: psutil.Process = wait_for(find, what="the worker's supervisor hub")
    return hub


@pytest.fixture
def pid_files(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Files jobs write their pids to; whatever they name is killed after the test."""
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(tmp_path / f"{name}.pids")
        return made[-1]

    yield make
    for path in made:
        for pid in (int(p) for p in path.read_text().split()) if path.exists() else ():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def start_trees(
    client: Client, pid_files: Callable[[str], Path], tmp_path: Path
) -> dict[str, list[int]]:
    """Jobs h1 and h2: the first run of each builds a tree (the pids of every process in a file
    of its own), a rerun only says "once"; their trees, once built and escaped."""
    jobs = {job: pid_files(job) for job in ("h1", "h2")}
    for job, pids in jobs.items():
        first = tmp_path / f"{job}.first"
        client.setup(job, f"if mkdir {first} 2>/dev/null; then {tree(pids)}; fi; echo once")
    return {job: recorded(pids, 4) for job, pids in jobs.items()}


def kill_hub(worker: WeblessServer, trees: dict[str, list[int]]) -> psutil.Process:
    """SIGKILL the worker's hub (checked to be above every tree); wait for every tree to die."""
    hub = hub_of(worker)
    assert all(hub in psutil.Process(pids[0]).parents() for pids in trees.values())
    hub.kill()
    every = [pid for pids in trees.values() for pid in pids]
    wait_for(lambda: not any(alive(pid) for pid in every), what="the dead hub's job processes")
    return hub


def given_back(worker: WeblessServer, manager: str, job: str) -> bool:
    expected = f"job {manager}/{job}: given back to the pool (the worker's job supervisor hub died"
    return expected in worker.log()


def test_kill_9_of_the_hub_gives_every_job_up_and_each_completes_once_elsewhere(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    pid_files: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    victim = workers("victim")
    client = client_factory(manager_name)
    trees = start_trees(client, pid_files, tmp_path)
    ear.drain("victim")  # it takes no new setup: whatever it gives back runs elsewhere
    ear.wait(lambda: (r := ear.latest("victim")) is not None and r.draining, what="draining")
    survivor = workers("survivor")
    kill_hub(victim, trees)
    for job in trees:
        assert client.wait_status(job, "complete", timeout=60)["stdout"] == "once\n"
    settle(ear, "survivor")
    assert finals(client) == {"h1": 1, "h2": 1}
    for job in trees:
        assert given_back(victim, manager_name, job)
        # the log line follows the commit the client heard: wait for it, not for a report
        wait_for(lambda j=job: ran_on(survivor, manager_name, j), what=f"{job} on the survivor")
        assert not ran_on(victim, manager_name, job)
    assert ear.last_words("victim").jobs_held == 0  # its drain ended: nothing left to hold
    assert processes_under(victim.directory) == [] and processes_under(survivor.directory) == []
    assert all(len(pid_files(job).read_text().split()) == 4 for job in trees)  # built once


def test_a_worker_whose_hub_died_gives_its_jobs_back_and_lives_on(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    pid_files: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    """Alone in its pool, the worker takes the setups it gave back again, under a new hub."""
    victim = workers("victim")
    client = client_factory(manager_name)
    trees = start_trees(client, pid_files, tmp_path)
    dead = kill_hub(victim, trees)
    for job in trees:
        assert client.wait_status(job, "complete", timeout=60)["stdout"] == "once\n"
        assert given_back(victim, manager_name, job)
    settle(ear, "victim")
    assert finals(client) == {"h1": 1, "h2": 1}
    assert victim.process is not None and victim.process.poll() is None
    assert hub_of(victim).pid != dead.pid
    assert processes_under(victim.directory) == []


def test_a_cancel_ends_a_jobs_escapee_while_another_job_of_the_worker_runs_on(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    pid_files: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    workers("solo")
    client = client_factory(manager_name)
    doomed, other = pid_files("doomed"), pid_files("other")
    go = tmp_path / "go"
    client.setup("doomed", tree(doomed))
    client.setup("other", f"{_escapee(other)}; while [ ! -e {go} ]; do sleep 0.1; done; echo done")
    doomed_pids = recorded(doomed, 4)
    other_pids = recorded(other, 3)
    client.publish("kill", {"job_id": "doomed"})
    assert client.wait_status("doomed", "cancelled", timeout=30)["complete"] == "true"
    wait_for(lambda: not any(alive(pid) for pid in doomed_pids), what="the cancelled job's tree")
    assert all(alive(pid) for pid in other_pids)  # not one process of the other job touched
    go.touch()
    assert client.wait_status("other", "complete", timeout=60)["stdout"] == "done\n"
    wait_for(lambda: not any(alive(pid) for pid in other_pids), what="the other job's leftovers")
    settle(ear, "solo")
    assert finals(client) == {"doomed": 1, "other": 1}


def test_one_jobs_leftovers_never_touch_another_jobs_processes(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    pid_files: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    """A job that ends leaving processes behind (one escaped its session) has them ended, and
    only them: the other job of the same worker, escapee included, runs on untouched."""
    workers("solo")
    client = client_factory(manager_name)
    quitter, stayer = pid_files("quitter"), pid_files("stayer")
    go = tmp_path / "go"
    client.setup("stayer", f"{_escapee(stayer)}; while [ ! -e {go} ]; do sleep 0.1; done; echo ok")
    stayer_pids = recorded(stayer, 3)
    leave = tmp_path / "leave"
    client.setup("quitter", f"{_escapee(quitter)}; while [ ! -e {leave} ]; do sleep 0.1; done")
    quitter_pids = recorded(quitter, 3)  # its escapee has left its session: now it may end
    leave.touch()
    assert client.wait_status("quitter", "complete", timeout=60)["complete"] == "true"
    wait_for(lambda: not any(alive(pid) for pid in quitter_pids), what="the quitter's leftovers")
    assert all(alive(pid) for pid in stayer_pids)
    go.touch()
    assert client.wait_status("stayer", "complete", timeout=60)["stdout"] == "ok\n"
    settle(ear, "solo")
    assert finals(client) == {"stayer": 1, "quitter": 1}


def _escapee(pids: Path) -> str:
    """Three processes (pids appended): the script, a background child, a ``setsid`` escapee."""
    return (
        f"echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; "
        f"( setsid sleep 300 & echo $! >> {pids} )"
    )
