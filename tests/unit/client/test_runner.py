"""Waiting for a job: bounded polling, and the hook a message-queue binding feeds."""

from __future__ import annotations

import threading
from pathlib import Path

from lwr.client.runner import CallbackWaiter, PollingWaiter
from tests.unit.client.fakes import FakeJobClient


def test_polling_grows_to_a_bounded_interval(tmp_path: Path) -> None:
    fake = FakeJobClient(tmp_path)
    fake.statuses = iter([{"status": "queued"}] * 8 + [{"status": "complete", "returncode": 0}])
    sleeps: list[float] = []
    waiter = PollingWaiter(interval=0.2, max_interval=1.0, sleep=sleeps.append)
    assert waiter.wait(fake, None)["status"] == "complete"  # type: ignore[arg-type]
    assert sleeps[0] == 0.2 and max(sleeps) == 1.0 and len(sleeps) == 8


def test_polling_times_out(tmp_path: Path) -> None:
    import pytest

    from lwr.errors import LwrError

    fake = FakeJobClient(tmp_path)
    fake.statuses = iter([{"status": "running"}] * 100)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    waiter = PollingWaiter(interval=1.0, max_interval=1.0, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(LwrError, match="not finished after 5"):
        waiter.wait(fake, 5)  # type: ignore[arg-type]


def test_polling_waits_the_whole_timeout_and_asks_at_the_deadline(tmp_path: Path) -> None:
    """Giving up when the *next* sleep would overshoot quit seconds early (a job finishing at
    9.9 s of a 10 s limit was abandoned at about 6 s): the last sleep is cut to the deadline."""
    import pytest

    from lwr.errors import JobTimeoutError

    fake = FakeJobClient(tmp_path)
    asked: list[float] = []
    now = [0.0]

    def statuses() -> object:
        while True:
            asked.append(now[0])
            yield {"status": "complete"} if now[0] >= 10.0 else {"status": "running"}

    fake.statuses = statuses()  # type: ignore[assignment]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    waiter = PollingWaiter(interval=1.0, max_interval=5.0, sleep=sleep, clock=lambda: now[0])
    assert waiter.wait(fake, 10)["status"] == "complete"  # type: ignore[arg-type]
    assert asked[-1] == 10.0
    fake.statuses = iter([{"status": "running"}] * 100)
    now[0] = 0.0
    with pytest.raises(JobTimeoutError):
        waiter.wait(fake, 10)  # type: ignore[arg-type]
    assert now[0] == 10.0


def test_callback_waiter_wakes_on_a_pushed_final_status(tmp_path: Path) -> None:
    fake = FakeJobClient(tmp_path)
    waiter = CallbackWaiter(fallback_interval=60)
    timer = threading.Timer(0.05, waiter.notify, args=({"status": "complete", "returncode": 0},))
    waiter.notify({"status": "running"})  # not final: ignored
    timer.start()
    assert waiter.wait(fake, 10)["status"] == "complete"  # type: ignore[arg-type]


def test_callback_waiter_falls_back_to_asking(tmp_path: Path) -> None:
    fake = FakeJobClient(tmp_path)
    fake.statuses = iter([{"status": "running"}, {"status": "lost"}])
    waiter = CallbackWaiter(fallback_interval=0.01)
    assert waiter.wait(fake, 10)["status"] == "lost"  # type: ignore[arg-type]
