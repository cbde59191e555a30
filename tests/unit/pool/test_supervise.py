"""The per-job supervisor (lwr.pool.supervise) with real processes: a job tree that dies with the
lifeline, a job's exit code passed through, leftovers of a finished job ended, a cancel.

The "worker" here is the test itself: it holds the lifeline's write end and closes it to play a
worker's death (the kernel does the same when a worker dies however it dies).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from lwr.pool import supervise, tether

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux's"),
    pytest.mark.timeout(60),
]


class Supervised:
    """A supervisor started as a pool worker starts one, with the lifeline held by the test."""

    def __init__(self, tmp_path: Path, script: str) -> None:
        self.read_end, self.write_end = os.pipe()
        self.pids = tmp_path / "pids"
        self.process = subprocess.Popen(
            tether.command(self.read_end, ["bash", "-c", script]),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(self.read_end,),
        )  # fmt: skip
        os.close(self.read_end)

    def recorded(self, count: int) -> list[int]:
        """The first ``count`` pids the job wrote to its pid file."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.pids.exists():
                pids = [int(p) for p in self.pids.read_text().split()]
                if len(pids) >= count:
                    return pids
            time.sleep(0.05)
        raise AssertionError(f"the job did not record {count} pids")

    def cut(self) -> None:
        """The worker dies: the last write end of the lifeline closes."""
        os.close(self.write_end)
        self.write_end = -1

    def close(self) -> None:
        """End whatever is left (a failing test must not leak processes)."""
        for pid in (int(p) for p in self.pids.read_text().split()) if self.pids.exists() else ():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.write_end >= 0:
            os.close(self.write_end)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[str], Supervised]]:
    made: list[Supervised] = []

    def factory(script: str) -> Supervised:
        supervised = Supervised(tmp_path, script)
        made.append(supervised)
        return supervised

    yield factory
    for supervised in made:
        supervised.close()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


#: a job of four processes: bash, a background sleep, a sleep that left the job's session
#: (setsid in a subshell that exits: only a subreaper still finds it), a foreground sleep
TREE = (
    "echo $$ >> pids; sleep 300 & echo $! >> pids; "
    "( setsid sleep 300 & echo $! >> pids ); sleep 300 & echo $! >> pids; wait"
)


def test_the_whole_job_tree_dies_with_the_lifeline(start: Callable[[str], Supervised]) -> None:
    job = start(TREE)
    pids = job.recorded(4)
    escaped = pids[2]
    # it leaves the job's session (setsid runs just after $! is known), and once its subshell
    # exits it is adopted by the subreaper
    assert wait_until(lambda: os.getsid(escaped) == escaped)
    assert wait_until(lambda: psutil.Process(escaped).ppid() == job.process.pid)
    job.cut()
    assert wait_gone(pids) == []
    assert job.process.wait(20) == -signal.SIGKILL


def test_the_exit_code_is_passed_on_and_leftovers_ended(start: Callable[[str], Supervised]) -> None:
    job = start("echo $$ >> pids; ( setsid sleep 300 & echo $! >> pids ); exit 7")
    pids = job.recorded(2)
    assert job.process.wait(20) == 7
    assert wait_gone(pids) == []


def test_a_cancel_reaches_processes_outside_the_group(start: Callable[[str], Supervised]) -> None:
    job = start(TREE)
    pids = job.recorded(4)
    os.killpg(job.process.pid, signal.SIGTERM)  # what the worker's cancel (kill_group) sends
    assert wait_gone(pids) == []
    assert job.process.wait(20) == 128 + signal.SIGTERM


def test_a_lifeline_cut_before_the_job_started_still_counts(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)  # the worker died before its supervisor even looked
    process = subprocess.Popen(
        tether.command(read_end, ["bash", "-c", f"echo $$ > {tmp_path / 'pid'}; exec sleep 300"]),
        start_new_session=True,
        pass_fds=(read_end,),
    )  # fmt: skip
    os.close(read_end)
    assert process.wait(20) == -signal.SIGKILL
    pid = (tmp_path / "pid").read_text().strip() if (tmp_path / "pid").exists() else ""
    assert not pid or wait_gone([int(pid)]) == []


def test_a_command_that_cannot_start_is_127(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        result = subprocess.run(
            tether.command(read_end, [str(tmp_path / "missing")]),
            pass_fds=(read_end,), capture_output=True, timeout=20,
        )  # fmt: skip
    finally:
        os.close(read_end)
        os.close(write_end)
    assert result.returncode == 127 and b"cannot start" in result.stderr


def test_bad_usage_is_refused() -> None:
    assert supervise.main(["3"]) == 2
