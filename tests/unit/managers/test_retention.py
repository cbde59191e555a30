"""finished_job_retention: finished jobs are deleted by the server itself after a while."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from lwr.managers.base import JobState
from lwr.managers.local import QueuedPythonManager
from lwr.managers.stateful import StatefulManager
from lwr.persistence.store import JobStore


def _manager(tmp_path: Path, retention: float) -> StatefulManager:
    store = JobStore(tmp_path / "state")
    backend = QueuedPythonManager("_default_", {"min_polling_interval": "0.05"})
    manager = StatefulManager(backend, store, tmp_path / "staging", retention=retention)
    manager.start()
    return manager


def _wait(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_old_finished_jobs_are_deleted_and_others_kept(tmp_path: Path) -> None:
    manager = _manager(tmp_path, retention=3600)
    try:
        for job_id in ("old", "recent", "running"):
            manager.setup(job_id)
        manager.submit("old", {"command_line": "true"})
        manager.submit("recent", {"command_line": "true"})
        _wait(lambda: manager.record("old").state.is_final)
        _wait(lambda: manager.record("recent").state.is_final)
        # age the "old" job's last change by two hours
        manager.store.put(replace(manager.record("old"), updated=time.time() - 7200))
        manager._next_expiry = 0.0
        manager._wakeup.set()
        _wait(lambda: manager.find("old") is None)
        assert not manager.directory("old").exists()
        assert manager.record("recent").state is JobState.COMPLETE
        assert manager.record("running").state is JobState.SETUP  # never finished, never expires
    finally:
        manager.stop()


def test_zero_retention_keeps_everything(tmp_path: Path) -> None:
    manager = _manager(tmp_path, retention=0)
    try:
        manager.setup("kept")
        manager.submit("kept", {"command_line": "true"})
        _wait(lambda: manager.record("kept").state.is_final)
        manager.store.put(replace(manager.record("kept"), updated=0.0))
        manager._wakeup.set()
        time.sleep(0.5)
        assert manager.find("kept") is not None
    finally:
        manager.stop()


def test_clean_frees_the_job_id_at_once_and_leftovers_are_removed_on_start(
    tmp_path: Path,
) -> None:
    manager = _manager(tmp_path, retention=0)
    try:
        manager.setup("big")
        (manager.directory("big").sub("working") / "data").write_bytes(b"x" * 1000)
        manager.clean("big")
        assert manager.find("big") is None
        assert not manager.directory("big").exists()
        _wait(lambda: not list(manager.staging_directory.glob(".deleting-*")))  # in background
    finally:
        manager.stop()
    # a crash between the rename and the delete leaves a .deleting-* directory behind
    leftover = manager.staging_directory / ".deleting-old-1234abcd"
    (leftover / "working").mkdir(parents=True)
    restarted = _manager(tmp_path, retention=0)
    try:
        _wait(lambda: not leftover.exists())
    finally:
        restarted.stop()
