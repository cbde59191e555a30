"""Local process groups: spawn, identity across restarts, and killing a whole job tree."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from lwr.managers import process

Spawn = Callable[[str], "subprocess.Popen[bytes]"]

pytestmark = pytest.mark.skipif(process.IS_WINDOWS, reason="POSIX process groups")


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def spawned(tmp_path: Path) -> Iterator[Spawn]:
    """Start bash scripts as process groups; whatever is left is killed at the end."""
    children: list[subprocess.Popen[bytes]] = []

    def start(command: str) -> subprocess.Popen[bytes]:
        child = process.spawn(["bash", "-c", command], tmp_path, tmp_path / "out", tmp_path / "err")
        children.append(child)
        return child

    yield start
    for child in children:
        try:
            os.killpg(child.pid, 9)
        except ProcessLookupError:
            pass
        child.wait()


def test_spawn_sends_streams_to_files_and_runs_in_cwd(tmp_path: Path, spawned: Spawn) -> None:
    child = spawned("pwd; echo oops >&2; read -r line || echo no-stdin")
    assert child.wait(timeout=10) == 0
    assert (tmp_path / "out").read_text().splitlines() == [str(tmp_path), "no-stdin"]
    assert (tmp_path / "err").read_text() == "oops\n"


def test_spawn_starts_a_new_process_group(spawned: Spawn) -> None:
    child = spawned("sleep 30")
    assert os.getpgid(child.pid) == child.pid
    assert os.getpgid(child.pid) != os.getpgid(0)


def test_identity_is_pid_and_start_time(spawned: Spawn) -> None:
    child = spawned("sleep 30")
    external_id = process.identity(child.pid)
    pid, started = process.parse_identity(external_id)
    assert pid == child.pid
    assert abs(started - psutil.Process(child.pid).create_time()) < 0.01
    assert process.is_alive(external_id)


def test_a_recycled_pid_is_not_the_job(spawned: Spawn) -> None:
    child = spawned("sleep 30")
    pid, started = process.parse_identity(process.identity(child.pid))
    assert not process.is_alive(f"{pid}:{started - 3600:.2f}")
    assert process.is_alive(f"{pid}:0")  # no start time recorded: the pid alone decides


def test_finished_and_zombie_processes_are_not_alive(spawned: Spawn) -> None:
    child = spawned("exit 0")
    external_id = process.identity(child.pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not gone(child.pid):
        time.sleep(0.02)
    assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE  # not reaped yet
    assert not process.is_alive(external_id)
    child.wait()
    assert not process.is_alive(external_id)


def test_identity_of_a_missing_process_has_no_start_time() -> None:
    assert process.identity(2**22 + 12345).endswith(":0.00")
    assert not process.is_alive(f"{2**22 + 12345}:0.00")


def test_parse_identity() -> None:
    assert process.parse_identity("123:1700000000.50") == (123, 1700000000.5)
    assert process.parse_identity("123") == (123, 0.0)


def test_kill_group_kills_children_and_grandchildren(tmp_path: Path, spawned: Spawn) -> None:
    pid_file = tmp_path / "grandchild.pid"
    child = spawned(f"(sleep 300 & echo $! > {pid_file}; wait) ; sleep 300")
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the grandchild never started"
        time.sleep(0.02)
    grandchild = int(pid_file.read_text())
    assert not gone(grandchild)
    started = time.monotonic()
    process.kill_group(process.identity(child.pid))
    assert time.monotonic() - started < 3  # SIGTERM was enough; no grace period wasted
    child.wait(timeout=10)
    deadline = time.monotonic() + 5
    while not gone(grandchild):
        assert time.monotonic() < deadline, "the grandchild survived"
        time.sleep(0.02)


def test_kill_group_escalates_to_sigkill(tmp_path: Path, spawned: Spawn) -> None:
    ready = tmp_path / "ready"
    child = spawned(f"trap '' TERM; sleep 300 & touch {ready}; wait; wait")
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    process.kill_group(process.identity(child.pid), grace=0.3)
    assert child.wait(timeout=10) == -9
    assert time.monotonic() - started >= 0.3


def test_kill_group_of_a_finished_job_does_nothing(spawned: Spawn) -> None:
    child = spawned("exit 0")
    external_id = process.identity(child.pid)
    child.wait()
    process.kill_group(external_id)  # must not raise
    process.kill_group(f"{2**22 + 4321}:0.00")


def test_kill_group_does_not_kill_a_recycled_pid(spawned: Spawn) -> None:
    child = spawned("sleep 30")
    pid, started = process.parse_identity(process.identity(child.pid))
    process.kill_group(f"{pid}:{started - 3600:.2f}")
    assert child.poll() is None
