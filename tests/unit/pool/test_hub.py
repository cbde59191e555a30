"""The worker's supervisor hub (lwr.pool.hub, lwr.pool.hub_client) with real processes.

The "worker" is the test: it holds the lifeline's write end and talks to a real hub process.
Each job is a process tree with a ``setsid`` escapee (only its job's subreaper still finds it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lwr.managers.process import kill_group
from lwr.pool.hub_client import HubClient, HubLostError, SupervisedChild

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds are Linux's"),
    pytest.mark.timeout(60),
]

#: the script, a background child, an escapee of a subshell's setsid, a foreground child
TREE = (
    "echo $$ >> pids; sleep 300 & echo $! >> pids; "
    "( setsid sleep 300 & echo $! >> pids ); sleep 300 & echo $! >> pids; wait"
)


class Worker:
    """The test as a pool worker: a lifeline, a hub, a directory per job."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.read_end, self.write_end = os.pipe()
        self.lost: list[list[int]] = []  # per loss: which tree pids were still alive then
        self.watched: list[int] = []
        self.slow_loss = 0.0
        self.hub = HubClient(self.read_end, self._on_lost)

    def _on_lost(self) -> None:
        time.sleep(self.slow_loss)  # a slow give-up: anything not waiting for it runs first
        self.lost.append([pid for pid in self.watched if alive(pid)])

    def start(self, name: str, script: str) -> SupervisedChild:
        directory = self.tmp_path / name
        directory.mkdir()
        return self.hub.spawn(
            ["bash", "-c", script], directory, directory / "out", directory / "err"
        )  # fmt: skip

    def pids(self, name: str, count: int) -> list[int]:
        path = self.tmp_path / name / "pids"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = [int(p) for p in path.read_text().split()] if path.exists() else []
            if len(found) >= count and _escaped(found[2]):
                self.watched.extend(found)
                return found
            time.sleep(0.05)
        raise AssertionError(f"job {name} did not record {count} pids")

    def close(self) -> None:
        for pid in self.watched:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if not self.hub.lost.is_set():
            self.hub.close()
        for fd in (self.read_end, self.write_end):
            if fd >= 0:
                os.close(fd)


def _escaped(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except ProcessLookupError:
        return False


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    made = Worker(tmp_path)
    yield made
    made.close()


def test_a_job_runs_in_its_directory_and_its_exit_code_comes_back(worker: Worker) -> None:
    child = worker.start("j", "echo out; echo err >&2; pwd; exit 7")
    assert child.wait(20) == 7 and child.poll() == 7
    assert (worker.tmp_path / "j" / "out").read_text() == f"out\n{worker.tmp_path / 'j'}\n"
    assert (worker.tmp_path / "j" / "err").read_text() == "err\n"
    assert child.external_id.startswith(f"{child.pid}:")


def test_a_job_gets_the_workers_environment_of_when_it_starts(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LWR_HUB_TEST", "set after the hub started")
    assert worker.start("j", 'echo "$LWR_HUB_TEST"').wait(20) == 0
    assert (worker.tmp_path / "j" / "out").read_text() == "set after the hub started\n"


def test_a_job_that_cannot_start_is_refused_with_the_reason(worker: Worker) -> None:
    with pytest.raises(OSError) as refused:
        worker.hub.spawn(["true"], worker.tmp_path / "missing", worker.tmp_path / "o",
                         worker.tmp_path / "e")  # fmt: skip
    assert refused.value.errno == 2 and not isinstance(refused.value, HubLostError)


def test_the_pidfd_handed_over_is_the_jobs_supervisor(worker: Worker) -> None:
    child = worker.start("j", "echo $$ > started; exec sleep 300")
    started = worker.tmp_path / "j" / "started"
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the job runs: its supervisor handles SIGTERM by now
    fd = child.open_pidfd()
    try:
        signal.pidfd_send_signal(fd, signal.SIGTERM)
    finally:
        os.close(fd)
    assert child.wait(20) == 128 + signal.SIGTERM


def test_a_worker_death_kills_every_jobs_tree_and_the_hub(worker: Worker) -> None:
    worker.start("a", TREE)
    worker.start("b", TREE)
    pids = worker.pids("a", 4) + worker.pids("b", 4)
    os.close(worker.write_end)  # what the kernel does when the worker dies
    worker.write_end = -1
    assert wait_gone(pids) == []
    assert worker.hub.process.wait(20) == -signal.SIGKILL


def test_a_hub_death_kills_every_job_before_the_leases_are_given_up(worker: Worker) -> None:
    first, second = worker.start("a", TREE), worker.start("b", TREE)
    pids = worker.pids("a", 4) + worker.pids("b", 4)
    worker.hub.process.kill()
    assert wait_gone(pids) == []
    assert worker.hub.wait_handled(20)
    assert worker.lost == [[]]  # told once, and only once every process was gone
    for child in (first, second):  # a cut-short job never shows as ended: nothing reports it
        assert child.wait(20) == -signal.SIGKILL and child.poll() is None and child.lost
    with pytest.raises(HubLostError):
        worker.start("c", "true")


def test_a_start_waiting_on_a_dying_hub_fails_only_after_the_leases_went(worker: Worker) -> None:
    worker.slow_loss = 0.5
    os.kill(worker.hub.process.pid, signal.SIGSTOP)  # the request waits for an answer
    failures: list[tuple[BaseException, int]] = []

    def start() -> None:
        try:
            worker.start("late", "true")
        except OSError as exc:
            failures.append((exc, len(worker.lost)))

    starter = threading.Thread(target=start)
    starter.start()
    time.sleep(0.2)
    worker.hub.process.kill()
    starter.join(30)
    assert len(failures) == 1
    error, losses_told = failures[0]
    assert isinstance(error, HubLostError) and losses_told == 1


def test_a_cancel_ends_one_jobs_escapee_and_not_another_jobs(worker: Worker) -> None:
    doomed, other = worker.start("a", TREE), worker.start("b", TREE)
    doomed_pids, other_pids = worker.pids("a", 4), worker.pids("b", 4)
    kill_group(doomed.external_id)  # the local manager's cancel
    assert doomed.wait(20) == 128 + signal.SIGTERM
    assert wait_gone(doomed_pids) == []
    assert all(alive(pid) for pid in other_pids) and other.poll() is None


def test_leftovers_of_an_ended_job_are_ended_and_no_others(worker: Worker) -> None:
    other = worker.start("b", TREE)
    other_pids = worker.pids("b", 4)
    script = "echo $$ >> pids; sleep 300 & echo $! >> pids; ( setsid sleep 300 & echo $! >> pids )"
    quitter = worker.start("a", f"{script}; while [ ! -e leave ]; do sleep 0.05; done")
    quitter_pids = worker.pids("a", 3)
    (worker.tmp_path / "a" / "leave").touch()
    assert quitter.wait(20) == 0
    assert wait_gone(quitter_pids) == []
    assert all(alive(pid) for pid in other_pids) and other.poll() is None


def test_a_job_supervisor_killed_outright_leaves_no_stray(worker: Worker) -> None:
    """Its job's processes fall to the hub (the subreaper above): it ends them, and only them."""
    doomed, other = worker.start("a", TREE), worker.start("b", TREE)
    doomed_pids, other_pids = worker.pids("a", 4), worker.pids("b", 4)
    os.kill(doomed.pid, signal.SIGKILL)
    assert doomed.wait(20) == -signal.SIGKILL
    assert wait_gone(doomed_pids) == []
    assert all(alive(pid) for pid in other_pids) and other.poll() is None


def test_the_hub_is_not_the_jobs_parent_but_their_supervisors_is(worker: Worker) -> None:
    child = worker.start("a", TREE)
    pids = worker.pids("a", 4)
    assert psutil.Process(child.pid).ppid() == worker.hub.process.pid
    assert psutil.Process(pids[0]).ppid() == child.pid
    assert os.getsid(child.pid) == child.pid == os.getpgid(pids[0])


def test_a_lifeline_cut_at_the_start_is_seen(tmp_path: Path) -> None:
    """A worker gone before its hub looked: the hub ends at once, no job can start."""
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        hub = HubClient(read_end, lambda: None)
    except OSError:
        return  # the hub died before it said hello: nothing ran
    finally:
        os.close(read_end)
    assert hub.process.wait(20) == -signal.SIGKILL
