"""The reaper (lwr/managers/reaper.py): every watched child is reaped and reported exactly once.

Both ways are run against real processes: pidfds with one thread (Linux), and the thread per
child kept for other systems. A child that has already exited when it is watched must still be
reported (a job can end before its launch is recorded), and the pidfd way must start no thread
per child.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from lwr.managers.reaper import Reaper, pidfds_work

WAYS = [
    pytest.param(True, marks=pytest.mark.skipif(not pidfds_work(), reason="no pidfds here")),
    False,
]


def _start(seconds: float, code: int = 0) -> subprocess.Popen[bytes]:
    script = f"import time, sys; time.sleep({seconds}); sys.exit({code})"
    return subprocess.Popen([sys.executable, "-c", script])


class Calls:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.done = threading.Event()
        self.expected = 0

    def callback(self, name: str):  # type: ignore[no-untyped-def]
        def on_exit() -> None:
            self.names.append(name)
            if len(self.names) >= self.expected:
                self.done.set()

        return on_exit


@pytest.mark.parametrize("use_pidfds", WAYS)
def test_each_child_is_reaped_and_reported_once(use_pidfds: bool) -> None:
    reaper = Reaper("test", use_pidfds=use_pidfds)
    calls = Calls()
    calls.expected = 4
    children = {f"c{i}": _start(0.05 * i, code=i) for i in range(4)}
    for name, child in children.items():
        reaper.watch(child, calls.callback(name))
    assert calls.done.wait(30)
    time.sleep(0.2)  # a second report of any child would land here
    assert sorted(calls.names) == sorted(children)
    assert {name: child.returncode for name, child in children.items()} == {
        "c0": 0,
        "c1": 1,
        "c2": 2,
        "c3": 3,
    }
    assert reaper.watching() == 0


@pytest.mark.parametrize("use_pidfds", WAYS)
def test_a_child_that_already_exited_is_still_reported(use_pidfds: bool) -> None:
    reaper = Reaper("test", use_pidfds=use_pidfds)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while not _exited(child.pid):
        time.sleep(0.01)
    calls = Calls()
    calls.expected = 1
    reaper.watch(child, calls.callback("early"))
    assert calls.done.wait(30)
    assert child.returncode == 0


@pytest.mark.skipif(not pidfds_work(), reason="no pidfds here")
def test_pidfds_use_one_thread_for_all_children() -> None:
    reaper = Reaper("one-thread", use_pidfds=True)
    before = threading.active_count()
    calls = Calls()
    calls.expected = 5
    children = [_start(0.5) for _ in range(5)]
    for index, child in enumerate(children):
        reaper.watch(child, calls.callback(str(index)))
    assert reaper.watching() == 5
    assert threading.active_count() == before + 1
    assert calls.done.wait(30)


def test_a_failing_callback_does_not_stop_the_reaper() -> None:
    reaper = Reaper("test")
    calls = Calls()
    calls.expected = 1

    def broken() -> None:
        raise RuntimeError("boom")

    reaper.watch(_start(0), broken)
    reaper.watch(_start(0.1), calls.callback("after"))
    assert calls.done.wait(30)


def _exited(pid: int) -> bool:
    """True once the process is a zombie (exited, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not pidfds_work(), reason="no pidfds here")
def test_a_closed_reaper_stops_its_thread_and_still_reports_children_watched_later() -> None:
    reaper = Reaper("closing", use_pidfds=True)
    reaper.watch(_start(0), lambda: None)
    thread = reaper._thread
    assert thread is not None
    reaper.close()
    thread.join(5)
    assert not thread.is_alive()
    later = Calls()
    later.expected = 1
    reaper.watch(_start(0), later.callback("after close"))  # a thread of its own
    assert later.done.wait(30)
    assert later.names == ["after close"]
