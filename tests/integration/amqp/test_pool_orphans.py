"""A pool worker's jobs die with it: no orphaned run beside the rerun the broker starts elsewhere.

Same setting as test_pool.py (real workers started as users start them, the real broker,
Galaxy's client). A job's processes here are a whole tree: the job script, a background child,
a process that left the job's session and process group (``setsid`` in a subshell that exits,
so only a child subreaper still finds it), and a foreground child.
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
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def tree_job(pids: Path, where: str) -> str:
    """Four processes (pids appended to ``pids``) on the worker named ``where``; quick elsewhere."""
    tree = (
        f"echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; "
        f"( setsid sleep 300 & echo $! >> {pids} ); sleep 300 & echo $! >> {pids}; wait"
    )
    return f"case $PWD in */{where}/*) {tree};; esac; echo once"


def processes_under(directory: Path) -> list[psutil.Process]:
    """Live processes whose working directory is inside ``directory`` (a worker's jobs')."""
    found = []
    for process in psutil.process_iter(["cwd", "status"]):
        cwd = process.info.get("cwd") or ""
        if cwd.startswith(f"{directory}/") and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where a job writes its processes' pids; any left alive are killed after the test."""
    path = tmp_path / "tree.pids"
    yield path
    for pid in (int(p) for p in path.read_text().split()) if path.exists() else ():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_of_a_worker_kills_its_jobs_whole_process_trees(
    manager_name: str,
    workers: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    ear: PoolEar,
    pid_file: Path,
) -> None:
    victim = workers("victim")
    client = client_factory(manager_name)
    client.setup("tree", tree_job(pid_file, "victim"))
    pids = [int(p) for p in wait_for(lambda: _four(pid_file), what="the job's four processes")]
    # it leaves the job's session and process group (setsid runs just after $! is known)
    wait_for(lambda: os.getsid(pids[2]) == pids[2], what="the escapee's own session")
    ear.wait(lambda: (r := ear.latest("victim")) is not None and r.jobs_held == 1)
    victim.kill9()
    wait_for(lambda: not any(alive(pid) for pid in pids), what="the dead worker's job processes")
    assert processes_under(victim.directory) == []
    survivor = workers("survivor")
    assert client.wait_status("tree", "complete", timeout=60)["stdout"] == "once\n"
    settle(ear, "survivor")
    assert ran_on(survivor, manager_name, "tree") and not ran_on(victim, manager_name, "tree")
    assert finals(client) == {"tree": 1}
    assert len(pid_file.read_text().split()) == 4  # the tree ran once, on the victim only


def test_a_plain_servers_jobs_are_not_tied_to_it(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    """Only pool workers tie their jobs: a single server's outlive it, to be adopted at restart."""
    server = webless_factory(manager_name)
    client = client_factory(manager_name)
    client.setup("plain", "sleep 300")
    client.wait_status("plain", "running")
    assert server.process is not None
    (job,) = psutil.Process(server.process.pid).children()
    assert "supervise" not in " ".join(job.cmdline())  # the job script itself, in its own session
    assert os.getsid(job.pid) == job.pid
    assert "dies with this pool worker" not in server.log()
    client.publish("kill", {"job_id": "plain"})
    client.wait_status("plain", "cancelled")


def _four(path: Path) -> list[str]:
    pids = path.read_text().split() if path.exists() else []
    return pids if len(pids) >= 4 else []
