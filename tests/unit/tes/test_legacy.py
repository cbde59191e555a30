"""Users' TES tasks from before namespaces: found once, moved step by step, every step repeatable.

The legacy rows are written as the release before namespaces wrote them (the job id as it is,
an empty ``owner`` column, ``"owner": "user:<name>"`` in the launch record, no files rows, the
directory at ``<root>/<id>``); the crash points are made by doing a move's first steps by hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lwr.managers import namespace
from lwr.managers.base import JobState
from lwr.managers.directory import JobDirectory
from lwr.persistence.store import JobRecord, JobStore, PageQuery
from lwr.tes import legacy

TASK = {
    "executors": [{"image": "x", "command": ["true"]}],
    "inputs": [{"path": "/in/note", "content": "four"}, {"path": "/in/got", "url": "http://h/x"}],
}


class FakeManager:
    """What the move asks of a manager: its name, job root and a job's directory."""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.staging_directory = name, root

    def directory(self, job_id: str) -> JobDirectory:
        return JobDirectory(namespace.job_path(self.staging_directory, job_id))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    found = JobStore(tmp_path / "db")
    yield found
    found.close()


@pytest.fixture
def manager(tmp_path: Path) -> FakeManager:
    return FakeManager("m", tmp_path / "staging")


def old_task(store: JobStore, manager: FakeManager, job_id: str, state: JobState,
             owner: str = "user:alice") -> Path:  # fmt: skip
    """A task as the release before namespaces stored it; its directory with a fetched input."""
    launch = {"command_line": "true", "tes": {"task": TASK, "owner": owner, "runtime": "none"}}
    store.put(JobRecord(manager.name, job_id, state=state, launch=launch))
    directory = manager.staging_directory / job_id
    (directory / "working" / "in").mkdir(parents=True)
    (directory / "working" / "in" / "got").write_bytes(b"g" * 9)
    return directory


def entries(store: JobStore) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in store.db.fetchall("SELECT * FROM tes_legacy_tasks")]


def files(store: JobStore, job_id: str) -> dict[str, int]:
    found = store.files_of([JobRecord("m", job_id)])[("m", job_id)]
    return {f.name: f.size for f in found}


def test_only_users_tasks_are_found_and_only_once(store: JobStore, manager: FakeManager) -> None:
    old_task(store, manager, "t1", JobState.COMPLETE)
    old_task(store, manager, "t2", JobState.COMPLETE, owner="token:abcdef")  # the admin token's
    said = 'echo \'{"tes": {"owner": "user:alice"}}\''  # inside a string: not a task of hers
    store.put(JobRecord("m", "g1", launch={"command_line": said}))
    store.put(JobRecord("m", "g2", launch={"tes": "not a block", "owner": "user:alice"}))
    assert legacy.adopt(store, {}) == 0  # no manager configured: found, nothing moved
    assert entries(store) == [("m", "t1", "alice")]
    old_task(store, manager, "t3", JobState.COMPLETE)  # after the scan: no release writes these
    assert legacy.adopt(store, {"m": manager}) == 1  # type: ignore[dict-item]
    assert entries(store) == [] and store.get("m", "t3") is not None


def test_a_finished_task_moves_whole(store: JobStore, manager: FakeManager) -> None:
    old = old_task(store, manager, "t1", JobState.COMPLETE)
    assert legacy.adopt(store, {"m": manager}) == 1  # type: ignore[dict-item]
    moved = store.get("m", "alice~t1")
    assert store.get("m", "t1") is None and moved is not None and moved.owner == "alice"
    assert [r.job_id for r in store.page(PageQuery(owner="alice"))] == ["alice~t1"]
    assert files(store, "alice~t1") == {"/in/got": 9, "/in/note": 4}
    assert moved.launch is not None and moved.launch["tes"]["job"] == ["m", "alice~t1"]
    assert moved.launch["tes"]["owner"] == "user:alice" and moved.launch["command_line"] == "true"
    new = manager.staging_directory / ".users" / "alice" / "t1"
    assert (new / "working" / "in" / "got").read_bytes() == b"g" * 9
    assert not os.path.lexists(old) and entries(store) == []
    assert legacy.adopt(store, {"m": manager}) == 0  # type: ignore[dict-item]
    assert store.get("m", "alice~t1") == moved


def test_a_running_task_keeps_a_link_until_it_is_final(
    store: JobStore, manager: FakeManager
) -> None:
    old = old_task(store, manager, "t1", JobState.RUNNING)
    assert legacy.adopt(store, {"m": manager}) == 1  # type: ignore[dict-item]
    new = manager.staging_directory / ".users" / "alice" / "t1"
    assert old.is_symlink() and old.resolve() == new.resolve() and new.is_dir()
    (old / "working" / "late").write_text("written through the old name")  # the job script
    assert (new / "working" / "late").exists() and entries(store) == [("m", "t1", "alice")]
    assert legacy.adopt(store, {"m": manager}) == 0  # type: ignore[dict-item]
    assert old.is_symlink()
    record = store.get("m", "alice~t1")
    assert record is not None
    store.put(record.evolve(state=JobState.COMPLETE))
    legacy.adopt(store, {"m": manager})  # type: ignore[dict-item]
    assert not os.path.lexists(old) and new.is_dir() and entries(store) == []


CUTS = ["before rename", "after rename", "before rows", "after rows", "between inputs"]


@pytest.mark.parametrize("crash", CUTS)
def test_a_move_cut_anywhere_is_finished(store: JobStore, manager: FakeManager, crash: str) -> None:
    old = old_task(store, manager, "t1", JobState.RUNNING)
    legacy.adopt(store, {})  # the scan only: t1 is entered
    root, new = manager.staging_directory, manager.staging_directory / ".users" / "alice" / "t1"
    link = root / ".moving-t1"
    new.parent.mkdir(parents=True)
    if crash in ("before rename", "after rename"):
        os.symlink(".users/alice/t1", link)
    if crash != "before rename":
        os.rename(old, new)
    if crash in ("before rows", "after rows", "between inputs"):
        os.symlink(".users/alice/t1", old)
    if crash in ("after rows", "between inputs"):
        store.rename_job("m", "t1", "alice~t1")
    if crash == "between inputs":
        store.record_file("m", "alice~t1", "input", "/in/note", 4)
    legacy.adopt(store, {"m": manager})  # type: ignore[dict-item]
    assert old.is_symlink() and (old / "working" / "in" / "got").exists()
    assert not os.path.lexists(link) and new.is_dir() and not new.is_symlink()
    assert store.get("m", "t1") is None and store.get("m", "alice~t1") is not None
    assert files(store, "alice~t1") == {"/in/got": 9, "/in/note": 4}  # named after the rename


def test_a_clash_is_left_as_it_is(store: JobStore, manager: FakeManager) -> None:
    old = old_task(store, manager, "t1", JobState.COMPLETE)
    store.put(JobRecord("m", "alice~t1", launch={"tes": {"task": TASK, "owner": "user:alice"}}))
    assert legacy.adopt(store, {"m": manager}) == 0  # type: ignore[dict-item]
    assert old.is_dir() and store.get("m", "t1") is not None
    assert entries(store) == [("m", "t1", "alice")]


def test_a_task_not_staged_in_yet_gets_its_sizes_later(
    store: JobStore, manager: FakeManager
) -> None:
    """Before stage-in a fetched input is named with 0, and the launch record says where
    stage-in records its size (lwr.tes.staging.JOB_KEY), as for a task made now."""
    old_task(store, manager, "t1", JobState.PREPROCESSING)
    legacy.adopt(store, {"m": manager})  # type: ignore[dict-item]
    moved = store.get("m", "alice~t1")
    assert moved is not None and moved.launch is not None
    assert moved.launch["tes"]["job"] == ["m", "alice~t1"]
    assert files(store, "alice~t1") == {"/in/got": 0, "/in/note": 4}
