"""Shared helpers of the StatefulManager tests: the Harness that builds managers, and job helpers.

Jobs are real bash processes in ``tmp_path``. Where a test needs a job to stay running, its
command waits for a *gate* file the test creates (:meth:`Harness.gate`), so nothing depends on
sleeps being long enough. The ``harness`` fixture is in this directory's conftest.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from lwr.managers import process
from lwr.managers.base import JobState, Manager
from lwr.managers.local import QueuedPythonManager
from lwr.managers.stateful import StatefulManager
from lwr.persistence.store import JobRecord, JobStore

WaitFor = Callable[..., Any]


class Harness:
    """Builds StatefulManagers over one store and staging directory, and cleans up after them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.store = JobStore(tmp_path / "state")
        self.staging = tmp_path / "staging"
        self.gates = tmp_path / "gates"
        self.gates.mkdir()
        self.managers: list[StatefulManager] = []
        self.launched: set[str] = set()  # every external id seen, to kill leftovers of failed tests

    def manager(
        self, backend: Manager | None = None, start: bool = True, **options: str
    ) -> StatefulManager:
        if backend is None:
            options = {"max_concurrent_jobs": "1", "min_polling_interval": "0.05", **options}
            backend = QueuedPythonManager("local", options)
        manager = StatefulManager(
            backend,
            self.store,
            self.staging,
            tool_dependency_dir=self.tmp / "deps",
            maximum_stream_size=4096,
        )
        self.managers.append(manager)
        manager.listeners.append(lambda _m, r: r.external_id and self.launched.add(r.external_id))
        if start:
            manager.start()
        return manager

    def gate(self, name: str) -> str:
        """A command fragment that blocks until :meth:`open` is called with ``name``."""
        gate, teardown = self.gates / name, self.gates / "_teardown"
        return f"while [ ! -e '{gate}' ] && [ ! -e '{teardown}' ]; do sleep 0.02; done"

    def open(self, name: str) -> None:
        (self.gates / name).touch()

    def close(self) -> None:
        self.open("_teardown")
        for manager in self.managers:
            manager.stop()
        for record in self.store.in_states("local", (JobState.QUEUED, JobState.RUNNING)):
            if record.external_id:
                self.launched.add(record.external_id)
        for external_id in self.launched:
            if ":" in external_id:  # a local process, not a fake backend's id
                process.kill_group(external_id, grace=0.5)
        self.store.close()


def run_job(manager: StatefulManager, job_id: str, command: str, **launch: Any) -> JobRecord:
    manager.setup(job_id, "cat1", "1.0")
    return manager.submit(job_id, {"command_line": command, **launch})


def final(manager: StatefulManager, job_id: str, wait_for: WaitFor) -> dict[str, Any]:
    status = wait_for(
        lambda: (s := manager.status(job_id))["complete"] == "true" and s,
        timeout=15,
        what=f"job {job_id} to finish",
    )
    return status  # type: ignore[no-any-return]


def state(manager: StatefulManager, job_id: str) -> JobState:
    return manager.record(job_id).state


def settle(manager: StatefulManager, passes: int = 5) -> None:
    """Give the monitor several passes (poll interval 0.05 s) to do something it should not."""
    time.sleep(manager.backend.poll_interval * passes)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
