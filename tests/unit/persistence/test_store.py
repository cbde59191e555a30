"""The SQLite job store: records, queue order, schema version, durability, threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.errors import ConfigurationError
from lwr.managers.base import JobState
from lwr.persistence.store import (
    LAUNCHED,
    LAUNCHING,
    PENDING,
    SCHEMA_VERSION,
    JobRecord,
    JobStore,
    PageQuery,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    job_store = JobStore(tmp_path / "state")
    yield job_store
    job_store.close()


def test_put_get_round_trip(store: JobStore) -> None:
    record = JobRecord(
        "m",
        "1",
        attempt=2,
        state=JobState.RUNNING,
        launch_state=LAUNCHED,
        external_id="123:456.00",
        native_state="R",
        reason=None,
        return_code=None,
        launch={"env": [{"name": "A", "value": "é"}], "params": {"n": 1}, "nested": [None, True]},
    )
    stored = store.put(record)
    assert stored.seq >= 1
    got = store.get("m", "1")
    assert got == stored
    assert got is not None and got.state is JobState.RUNNING
    assert got.launch == {
        "env": [{"name": "A", "value": "é"}],
        "params": {"n": 1},
        "nested": [None, True],
    }


def test_get_missing_and_per_manager(store: JobStore) -> None:
    store.put(JobRecord("a", "1"))
    assert store.get("a", "2") is None
    assert store.get("b", "1") is None  # the same id on another manager is another job


def test_put_replaces_and_keeps_the_queue_position(store: JobStore) -> None:
    first = store.put(JobRecord("m", "1"))
    second = store.put(JobRecord("m", "2"))
    updated = store.put(first.evolve(state=JobState.QUEUED, reason="x"))
    assert updated.seq == first.seq < second.seq
    got = store.get("m", "1")
    assert got is not None and got.state is JobState.QUEUED and got.reason == "x"
    assert store.count("m") == 2


def test_evolve_stamps_updated(store: JobStore) -> None:
    record = JobRecord("m", "1", updated=0.0)
    assert record.evolve(state=JobState.QUEUED).updated > 0.0


def test_delete(store: JobStore) -> None:
    store.put(JobRecord("m", "1"))
    store.put(JobRecord("m", "2"))
    store.delete("m", "1")
    assert store.get("m", "1") is None
    assert store.get("m", "2") is not None
    store.delete("m", "nope")  # deleting a missing record is fine
    assert store.count() == 1


def test_in_states_is_in_queue_order_and_filtered(store: JobStore) -> None:
    for job_id in ("c", "a", "b"):
        store.put(JobRecord("m", job_id, state=JobState.QUEUED))
    store.put(JobRecord("m", "done", state=JobState.COMPLETE))
    store.put(JobRecord("other", "x", state=JobState.QUEUED))
    # updating a record must not move it to the back of the queue
    a = store.get("m", "a")
    assert a is not None
    store.put(a.evolve(launch_state=LAUNCHING))
    queued = store.in_states("m", [JobState.QUEUED])
    assert [r.job_id for r in queued] == ["c", "a", "b"]
    assert queued[1].launch_state == LAUNCHING
    both = store.in_states("m", (JobState.QUEUED, JobState.COMPLETE))
    assert [r.job_id for r in both] == ["c", "a", "b", "done"]
    assert store.in_states("m", [JobState.RUNNING]) == []


def test_a_new_attempt_without_seq_goes_to_the_back(store: JobStore) -> None:
    old = store.put(JobRecord("m", "1", state=JobState.COMPLETE))
    store.put(JobRecord("m", "2", state=JobState.QUEUED))
    store.put(JobRecord("m", "1", attempt=2, state=JobState.QUEUED))  # seq=0: a fresh position
    assert [r.job_id for r in store.in_states("m", [JobState.QUEUED])] == ["2", "1"]
    again = store.get("m", "1")
    assert again is not None and again.seq > old.seq


def test_count(store: JobStore) -> None:
    assert store.count() == 0
    store.put(JobRecord("a", "1"))
    store.put(JobRecord("b", "1"))
    store.put(JobRecord("b", "2"))
    assert store.count() == 3
    assert store.count("b") == 2
    assert store.count("c") == 0


def test_schema_version_is_recorded(store: JobStore) -> None:
    assert store.path is not None
    with sqlite3.connect(store.path) as db:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    assert version == SCHEMA_VERSION
    assert mode == "wal"


def test_a_store_from_a_newer_lwr_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    JobStore(directory).close()
    with sqlite3.connect(directory / "jobs.sqlite3") as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigurationError, match="newer LWR"):
        JobStore(directory)


def test_survives_reopen(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    first = JobStore(directory)
    first.put(JobRecord("m", "1", state=JobState.QUEUED, launch={"command": "x"}))
    first.put(
        JobRecord("m", "2", state=JobState.RUNNING, launch_state=LAUNCHED, external_id="9:1.00")
    )
    first.close()
    second = JobStore(directory)
    try:
        assert [r.job_id for r in second.in_states("m", [JobState.QUEUED, JobState.RUNNING])] == [
            "1",
            "2",
        ]
        got = second.get("m", "2")
        assert got is not None and got.external_id == "9:1.00" and got.launch_state == LAUNCHED
        third = second.put(JobRecord("m", "3"))
        assert third.seq == 3  # sequence numbers continue after a restart
    finally:
        second.close()


def test_reopening_does_not_lose_data_written_without_close(tmp_path: Path) -> None:
    """A crash never calls close(): each put must already be committed."""
    directory = tmp_path / "state"
    crashed = JobStore(directory)
    crashed.put(JobRecord("m", "1", state=JobState.QUEUED, launch_state=PENDING))
    fresh = JobStore(directory)  # second connection while the first is still open
    try:
        got = fresh.get("m", "1")
        assert got is not None and got.state is JobState.QUEUED
    finally:
        fresh.close()
        crashed.close()


def test_concurrent_puts_from_threads(store: JobStore) -> None:
    threads_count, per_thread = 8, 40
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_count)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                record = store.put(JobRecord("m", f"{n}-{i}", state=JobState.QUEUED))
                store.put(record.evolve(launch_state=LAUNCHING))
                assert store.get("m", f"{n}-{i}") is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    records = store.in_states("m", [JobState.QUEUED])
    assert len(records) == threads_count * per_thread
    seqs = [r.seq for r in records]
    assert len(set(seqs)) == len(seqs)  # every job got its own queue position
    assert seqs == sorted(seqs)
    assert all(r.launch_state == LAUNCHING for r in records)


def test_a_failed_transaction_rolls_back(store: JobStore) -> None:
    store.put(JobRecord("m", "1"))
    with pytest.raises(TypeError):
        store.put(JobRecord("m", "2", launch={"not json": object()}))
    assert store.get("m", "2") is None
    store.put(JobRecord("m", "3"))  # the store is still usable
    assert store.count("m") == 2


#: the jobs table as schema 2 (LWR before service users) created it
_SCHEMA_2 = """
CREATE TABLE jobs (manager TEXT NOT NULL, job_id TEXT NOT NULL, attempt INTEGER NOT NULL,
    state TEXT NOT NULL, launch_state TEXT NOT NULL, external_id TEXT, native_state TEXT,
    reason TEXT, return_code INTEGER, launch TEXT, seq INTEGER NOT NULL, created REAL NOT NULL,
    updated REAL NOT NULL, PRIMARY KEY (manager, job_id));
CREATE INDEX jobs_active ON jobs (manager, state, seq);
CREATE INDEX jobs_seq ON jobs (seq);
INSERT INTO jobs VALUES ('m', '1', 1, 'complete', 'launched', 'x', NULL, NULL, 0, '{}', 1, 5.0,
    6.0);
PRAGMA user_version=2;
"""


def test_a_schema_2_store_is_upgraded_in_place(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    with sqlite3.connect(directory / "jobs.sqlite3") as db:
        db.executescript(_SCHEMA_2)
    store = JobStore(directory)
    old = store.get("m", "1")
    assert old is not None and old.state is JobState.COMPLETE and old.owner is None
    new = store.put(JobRecord("m", "alice~2"))
    store.record_file("m", "alice~2", "input", "a", 3)
    assert [r.job_id for r in store.page(PageQuery(owner="alice"))] == [new.job_id]
    store.close()
    with sqlite3.connect(directory / "jobs.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_finish_time_is_stamped_and_cleared_with_a_new_attempt(store: JobStore) -> None:
    record = store.put(JobRecord("m", "1", state=JobState.RUNNING))
    assert record.finished is None
    done = store.put(record.evolve(state=JobState.FAILED))
    assert done.finished == done.updated and store.get("m", "1") == done
    again = store.put(JobRecord("m", "1", attempt=2))
    assert again.finished is None


def test_uploaded_files_belong_to_one_attempt(store: JobStore) -> None:
    record = store.put(JobRecord("m", "1"))
    store.record_file("m", "1", "input", "a", 10)
    store.record_file("m", "1", "input", "b", 20)
    store.record_file("m", "1", "input", "a", 15)  # uploaded again: replaces
    assert store.uploaded_total("m", "1", ("input", "new")) == 35
    assert store.uploaded_total("m", "1", ("input", "a")) == 20
    assert [f.name for f in store.files_of([record])[("m", "1")]] == ["a", "b"]
    store.put(record.evolve(state=JobState.QUEUED))  # the same attempt keeps them
    assert store.uploaded_total("m", "1", ("x", "y")) == 35
    store.put(JobRecord("m", "1", attempt=2))  # a new attempt starts empty
    assert store.uploaded_total("m", "1", ("x", "y")) == 0
    store.record_file("m", "1", "input", "a", 1)
    store.delete("m", "1")
    assert store.uploaded_total("m", "1", ("x", "y")) == 0


def test_launched_count_is_per_owner_across_managers(store: JobStore) -> None:
    running = {"state": JobState.RUNNING, "launch_state": LAUNCHED}
    store.put(JobRecord("a", "alice~1", **running))  # type: ignore[arg-type]
    store.put(JobRecord("b", "alice~2", **running))  # type: ignore[arg-type]
    store.put(JobRecord("a", "alice~3", state=JobState.QUEUED, launch_state=PENDING))
    store.put(JobRecord("a", "alice~4", state=JobState.COMPLETE, launch_state=LAUNCHED))
    store.put(JobRecord("a", "bob~1", **running))  # type: ignore[arg-type]
    assert store.launched_count("alice") == 2 and store.launched_count("bob") == 1
