"""The per-job serialisation of a user's uploads (lwr.service.quotas)."""

from __future__ import annotations

import threading
import time

from lwr.service import quotas
from lwr.service.store import User
from lwr.service.users import ADMIN, Caller

ALICE = Caller(User("alice", "free", 0.0, 0.0))


def test_uploads_into_one_job_wait_for_each_other_and_nothing_is_kept() -> None:
    inside: list[int] = []
    most = 0

    def upload() -> None:
        nonlocal most
        with quotas.serialised(ALICE, ("m", "alice~1")):
            inside.append(1)
            most = max(most, len(inside))
            time.sleep(0.01)
            inside.pop()

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1
    assert quotas._JOBS._held == {}


def test_other_jobs_and_the_admin_do_not_wait() -> None:
    with quotas.serialised(ALICE, ("m", "alice~1")):
        done = threading.Event()

        def other() -> None:
            with quotas.serialised(ALICE, ("m", "alice~2")), quotas.serialised(ADMIN, ("m", "1")):
                done.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert done.wait(10)
        thread.join()
