"""The retention worker in-process over a real job store (SQLite and PostgreSQL) and the
``directory`` archive store: archive, the 409, restore on upgrade, downgrade, crashes between a
step's work and its transaction (as an exception here; the real ``kill -9`` is in
test_retention_server.py), and rows of jobs that are gone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from lwr.errors import ResultsArchivedError
from lwr.managers.base import JobState
from lwr.managers.directory import JobDirectory
from lwr.persistence.store import JobRecord, JobStore
from lwr.service import listing
from lwr.service.plans import Plan, Plans
from lwr.service.retention import access, worker
from lwr.service.retention.settings import RetentionConfig
from lwr.service.retention.table import ARCHIVE, ARCHIVED, HOT, PURGE, RESTORE, Kept
from lwr.service.users import ADMIN as ADMIN_CALLER
from lwr.service.users import Users
from tests.integration.postgres import scratch_database

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

PLANS = Plans((Plan("free", retention_minutes=0.01), Plan("premium")), "free")
FILES = {"outputs/out.txt": b"result\n" * 100, "working/sub/w.dat": b"\x00\x01" * 50}
KEPT = {"stdout": b"the log\n", "metadata/tool_stdout": b"tool said\n", "return_code": b"0"}


class Crash(BaseException):
    """Stands for kill -9 at a crash point: nothing after it in the step runs."""


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    context = scratch_database("lwr_retention") if request.param == "postgresql" else nullcontext()
    with context as url:
        store = JobStore(tmp_path / "state", url)
        users = Users(store, PLANS)
        users.add("alice")
        users.add("pat", "premium")
        jobs = tmp_path / "jobs"
        config = RetentionConfig(directory_option=tmp_path / "archive", scan_interval=0.1)
        retention = worker.RetentionWorker(
            store, users, config, lambda m, j: JobDirectory(jobs / m / j), tmp_path / "scratch"
        )
        users.plan_listeners.append(retention.plan_changed)
        retention.scratch.mkdir()
        yield {"store": store, "users": users, "worker": retention, "jobs": jobs}
        store.close()


def finished_job(world: dict[str, Any], job_id: str, age: float = 60.0) -> JobRecord:
    root = world["jobs"] / "m" / job_id
    for name, data in {**FILES, **KEPT}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    past = time.time() - age
    return world["store"].put(
        JobRecord("m", job_id, state=JobState.COMPLETE, created=past, updated=past)
    )


def queued_for_archive(world: dict[str, Any], job_id: str) -> Kept:
    """A finished job's row with its archive queued and not started."""
    finished_job(world, job_id)
    world["worker"].take_changes(time.time())
    world["worker"].planner.queue_due(time.time())
    kept: Kept = world["worker"].table.get("m", job_id)
    assert kept.task == ARCHIVE
    return kept


def settle(retention: worker.RetentionWorker) -> None:
    for _ in range(20):
        if not retention.run_once():
            return
    raise AssertionError("the worker never ran out of work")


def contents(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_archive_409_upgrade_restore(world: dict[str, Any]) -> None:
    retention, store = world["worker"], world["store"]
    record = finished_job(world, "alice~j1")
    root = world["jobs"] / "m" / "alice~j1"
    settle(retention)
    kept = retention.table.get("m", "alice~j1")
    assert kept.status == ARCHIVED and kept.task is None and kept.archive_id
    assert retention.archives.keys() == [worker.archive_key(kept)]
    assert not (root / "outputs" / "out.txt").exists() and (root / "outputs").is_dir()
    assert {k: v for k, v in contents(root).items()} == KEPT  # the log stays
    with pytest.raises(ResultsArchivedError) as refused:
        access.check_download(retention.table, world["users"], record, "output", "out.txt")
    assert refused.value.status == 409
    assert refused.value.to_dict()["upgrade_to"] == ["premium"]
    access.check_download(retention.table, world["users"], record, "output_metadata", "x")
    page = listing.list_jobs(store, listing.query_for(ADMIN_CALLER, None), True, retention.table)
    (job,) = page["jobs"]
    assert job["archived"] and not job["restoring"] and not job["results_available"]

    world["users"].set_plan("alice", "premium")
    page = listing.list_jobs(store, listing.query_for(ADMIN_CALLER, None), True, retention.table)
    assert page["jobs"][0]["restoring"] and page["jobs"][0]["archived"]
    settle(retention)
    kept = retention.table.get("m", "alice~j1")
    assert kept.status == HOT and kept.task is None and kept.hot_until is None
    assert contents(root) == {**FILES, **KEPT}
    assert retention.archives.keys() == []
    access.check_download(retention.table, world["users"], record, "output", "out.txt")


def test_a_downgrade_never_touches_existing_results(world: dict[str, Any]) -> None:
    retention = world["worker"]
    finished_job(world, "pat~old", age=3600)
    settle(retention)
    assert retention.table.get("m", "pat~old").hot_until is None
    world["users"].set_plan("pat", "free")
    finished_job(world, "pat~new")
    settle(retention)
    assert retention.table.get("m", "pat~old").status == HOT
    assert retention.table.get("m", "pat~new").status == ARCHIVED  # new deadlines: the new plan


def test_admin_jobs_are_never_archived(world: dict[str, Any]) -> None:
    finished_job(world, "galaxy7", age=10**6)
    settle(world["worker"])
    assert world["worker"].table.get("m", "galaxy7") is None
    assert (world["jobs"] / "m" / "galaxy7" / "outputs" / "out.txt").exists()


#: crash point -> (row status, task) right after the crash, and whether the hot files are whole
AFTER_CRASH = {
    "archive-stored": (HOT, ARCHIVE, True),
    "archive-recorded": (ARCHIVED, PURGE, True),  # both copies, downloads already refused
    "restore-placed": (ARCHIVED, RESTORE, True),
}


@pytest.mark.parametrize("point", sorted(AFTER_CRASH))
def test_a_crash_at_a_step_reruns_it_once(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    retention = world["worker"]
    finished_job(world, "alice~c")
    root = world["jobs"] / "m" / "alice~c"

    def crash(name: str) -> None:
        if name == point:
            raise Crash(name)

    if point == "restore-placed":
        settle(retention)
        world["users"].set_plan("alice", "premium")
    monkeypatch.setattr(worker, "crash_point", crash)
    with pytest.raises(Crash):
        settle(retention)
    kept = retention.table.get("m", "alice~c")
    status, task, whole = AFTER_CRASH[point]
    # the step's work is done, what follows it is not; the archive is there, once
    assert (kept.status, kept.task) == (status, task)
    assert retention.archives.keys() == [worker.archive_key(kept)]
    assert (contents(root) == {**FILES, **KEPT}) is whole
    monkeypatch.undo()
    settle(retention)
    kept = retention.table.get("m", "alice~c")
    if point == "restore-placed":
        assert kept.status == HOT and contents(root) == {**FILES, **KEPT}
        assert retention.archives.keys() == []
    else:
        assert kept.status == ARCHIVED and contents(root) == KEPT
        assert retention.archives.keys() == [worker.archive_key(kept)]
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []


def test_a_damaged_archive_is_not_restored(world: dict[str, Any]) -> None:
    retention = world["worker"]
    finished_job(world, "alice~d")
    settle(retention)
    kept = retention.table.get("m", "alice~d")
    path = retention.config.directory / f"{kept.archive_id}.tar.gz"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    world["users"].set_plan("alice", "premium")
    retention.run_once()
    kept = retention.table.get("m", "alice~d")
    assert kept.status == ARCHIVED and kept.task == RESTORE and "SHA-256" in (kept.error or "")
    assert kept.attempts == 1
    assert retention.table.queue(time.time(), retention.identity) == []  # backing off
    assert retention.table.queue(kept.queued + 1, retention.identity) == [kept]


def test_the_archive_of_a_cleaned_job_goes_with_it(world: dict[str, Any]) -> None:
    retention = world["worker"]
    finished_job(world, "alice~gone")
    settle(retention)
    assert retention.archives.keys()
    world["store"].delete("m", "alice~gone")
    settle(retention)
    assert retention.table.get("m", "alice~gone") is None and retention.archives.keys() == []


def test_an_upgrade_during_an_archive_drops_that_archive(world: dict[str, Any]) -> None:
    retention = world["worker"]
    before = queued_for_archive(world, "alice~race")
    world["users"].set_plan("alice", "premium")  # while the archive step is "running"
    assert not retention._archive(before)  # its transaction finds the row changed
    settle(retention)
    kept = retention.table.get("m", "alice~race")
    assert kept.status == HOT and kept.task is None and retention.archives.keys() == []
    assert contents(world["jobs"] / "m" / "alice~race") == {**FILES, **KEPT}


def test_an_archive_that_does_not_read_back_keeps_the_results_hot(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    retention = world["worker"]
    finished_job(world, "alice~bad")
    monkeypatch.setattr(retention.archives, "check", lambda *args: False)
    retention.run_once()
    kept = retention.table.get("m", "alice~bad")
    assert kept.status == HOT and "does not read back" in (kept.error or "")
    assert contents(world["jobs"] / "m" / "alice~bad") == {**FILES, **KEPT}


def test_a_job_directory_missing_here_is_never_archived(world: dict[str, Any]) -> None:
    retention = world["worker"]
    finished_job(world, "alice~elsewhere")
    import shutil

    shutil.rmtree(world["jobs"] / "m" / "alice~elsewhere")
    retention.run_once()
    kept = retention.table.get("m", "alice~elsewhere")
    assert kept.status == HOT and "not on this server" in (kept.error or "")
    assert retention.archives.keys() == []


def test_a_job_set_up_again_is_not_its_archived_attempt(world: dict[str, Any]) -> None:
    retention, store = world["worker"], world["store"]
    finished_job(world, "alice~again")
    settle(retention)
    fresh = store.put(JobRecord("m", "alice~again"))  # a new attempt: a new sequence number
    access.check_download(retention.table, world["users"], fresh, "output", "out.txt")
    page = listing.list_jobs(store, listing.query_for(ADMIN_CALLER, None), True, retention.table)
    assert page["jobs"][0]["archived"] is False
    settle(retention)
    assert retention.table.get("m", "alice~again") is None and retention.archives.keys() == []


def test_a_plan_changed_behind_the_servers_back_still_restores(world: dict[str, Any]) -> None:
    retention = world["worker"]
    finished_job(world, "alice~quiet")
    settle(retention)
    assert retention.table.get("m", "alice~quiet").status == ARCHIVED
    world["users"].rows.update("alice", plan="premium")  # no listener hears this
    settle(retention)
    kept = retention.table.get("m", "alice~quiet")
    assert kept.status == HOT and kept.hot_until is None and retention.archives.keys() == []


def test_a_step_leased_by_another_server_is_left_to_it(world: dict[str, Any]) -> None:
    retention = world["worker"]
    kept = queued_for_archive(world, "alice~lease")
    assert retention.table.claim(kept, "other-host:/srv/lwr", time.time() + 600)
    retention.run_once()
    assert retention.table.get("m", "alice~lease").status == HOT  # not this worker's to run
    assert retention.table.claim(kept, "other-host:/srv/lwr", time.time() - 1)  # it expired
    settle(retention)
    assert retention.table.get("m", "alice~lease").status == ARCHIVED
