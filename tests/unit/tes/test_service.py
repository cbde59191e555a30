"""Listing and finding tasks: owners, filters and pages, over a real job store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lwr.errors import InvalidRequestError, NotFoundError
from lwr.managers.base import JobState
from lwr.managers.directory import JobDirectory
from lwr.persistence.store import JobRecord, JobStore
from lwr.tes import legacy, service


class FakeManager:
    """The two things the face asks a manager for when reading: a record and a directory."""

    name = "m"

    def __init__(self, store: JobStore, root: Path) -> None:
        self.store, self.root = store, root

    def find(self, job_id: str) -> JobRecord | None:
        return self.store.get(self.name, job_id)

    def directory(self, job_id: str) -> JobDirectory:
        return JobDirectory(self.root / job_id)


@pytest.fixture
def manager(tmp_path: Path) -> Any:
    store = JobStore(tmp_path / "db")
    fake = FakeManager(store, tmp_path)
    for index in range(6):
        owner = "alice" if index % 3 else "bob"
        task = {"name": f"t{index}", "tags": {"i": str(index)}, "executors": []}
        launch = {"tes": {"task": task, "owner": owner}}
        store.put(
            JobRecord("m", f"job{index}", state=JobState.COMPLETE, return_code=0, launch=launch)
        )
    store.put(JobRecord("m", "galaxy-job", launch={"command_line": "x"}))  # not a task
    yield fake
    store.close()


def ids(answer: dict[str, Any]) -> list[str]:
    return [task["id"] for task in answer["tasks"]]


def test_a_caller_sees_only_their_tasks(manager: Any) -> None:
    everything = service.Filters()
    alice = service.list_tasks(manager.store, manager, "alice", everything, "MINIMAL", 10, None)
    assert ids(alice) == ["job5", "job4", "job2", "job1"]
    assert service.find(manager, "job1", "alice").job_id == "job1"
    for task_id in ("job0", "galaxy-job", "nope", "../x"):
        with pytest.raises(NotFoundError):
            service.find(manager, task_id, "alice")


def test_pages_and_filters(manager: Any) -> None:
    first = service.list_tasks(
        manager.store, manager, "alice", service.Filters(), "MINIMAL", 3, None
    )
    assert ids(first) == ["job5", "job4", "job2"] and first["next_page_token"]
    rest = service.list_tasks(
        manager.store, manager, "alice", service.Filters(), "MINIMAL", 3, first["next_page_token"]
    )
    assert ids(rest) == ["job1"] and "next_page_token" not in rest
    wanted = service.filters("t4", None, [], [])
    assert ids(service.list_tasks(manager.store, manager, "alice", wanted, "MINIMAL", 9, None)) == [
        "job4"
    ]
    tagged = service.filters(None, "COMPLETE", ["i"], ["2"])
    assert ids(service.list_tasks(manager.store, manager, "alice", tagged, "MINIMAL", 9, None)) == [
        "job2"
    ]


@pytest.mark.parametrize("raw", ["²", "٣", "1_0", " 5", "+5", "5\n"])
def test_page_size_and_token_are_ascii_digits(raw: str) -> None:
    """Found by fuzzing: page_token "²" passed str.isdigit() and int() then raised (a 500);
    int() also took "1_0", " 5" and Arabic-Indic digits as page sizes."""
    with pytest.raises(InvalidRequestError):
        service.page_size(raw)
    with pytest.raises(InvalidRequestError):
        service._token(raw)
    assert service.page_size("5") == 5 and service._token("12") == 12


def test_a_users_tasks_are_found_in_their_namespace_only(manager: Any) -> None:
    """alice's task is ``alice~t1``: found by her by its client id, by nobody else; a task of
    hers from before namespaces (the admin's namespace, marked ``user:alice``) is hers once the
    start-up moved it into her namespace (lwr.tes.legacy)."""
    task = {"name": "mine", "executors": [{"image": "x", "command": ["true"]}]}
    for stored, owner in (("alice~t1", "user:alice"), ("old1", "user:alice")):
        launch = {"tes": {"task": task, "owner": owner}}
        manager.store.put(JobRecord("m", stored, state=JobState.COMPLETE, launch=launch))
    assert service.find(manager, "t1", "user:alice").job_id == "alice~t1"
    with pytest.raises(NotFoundError):
        service.find(manager, "old1", "user:alice")
    manager.staging_directory = manager.root
    assert legacy.adopt(manager.store, {"m": manager}) == 1
    assert service.find(manager, "old1", "user:alice").job_id == "alice~old1"
    for who, task_id in (("user:bob", "t1"), ("user:bob", "old1"), ("alice", "t1"),
                         ("user:alice", "alice~t1")):  # fmt: skip
        with pytest.raises(NotFoundError):
            service.find(manager, task_id, who)
    mine = service.list_tasks(
        manager.store, manager, "user:alice", service.Filters(), "BASIC", 9, None
    )
    assert ids(mine) == ["old1", "t1"] and mine["tasks"][0]["name"] == "mine"
    assert (
        ids(
            service.list_tasks(
                manager.store, manager, "user:bob", service.Filters(), "MINIMAL", 9, None
            )
        )
        == []
    )
