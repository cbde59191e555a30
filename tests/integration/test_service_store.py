"""The job store and the users table on both databases: the same statements, the same answers.

The PostgreSQL runs use a database of their own on the machine's server (created and dropped
here, see ``tests.integration.postgres``); a lost PostgreSQL connection is provoked for real with
``pg_terminate_backend``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from lwr.errors import UserExistsError
from lwr.managers.base import JobState
from lwr.persistence.store import LAUNCHED, JobRecord, JobStore, PageQuery
from lwr.service.plans import Plans
from lwr.service.users import Users
from tests.integration.postgres import SERVER, scratch_database

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    database = scratch_database("lwr_store") if request.param == "postgresql" else nullcontext()
    with database as url:
        job_store = JobStore(tmp_path / "state", url)
        try:
            yield job_store
        finally:
            job_store.close()


def test_records_round_trip_with_floats_kept_exactly(store: JobStore) -> None:
    record = JobRecord("m", "alice~1", created=1795917858.2367325, launch={"a": ["é", None]})
    stored = store.put(record)
    assert store.get("m", "alice~1") == stored and stored.seq == 1
    done = store.put(stored.evolve(state=JobState.COMPLETE, return_code=0))
    assert store.get("m", "alice~1") == done and done.finished is not None
    assert store.in_states("m", [JobState.COMPLETE]) == [done]


def test_pages_files_and_counts(store: JobStore) -> None:
    for n in range(5):
        store.put(JobRecord("m", f"alice~{n}", state=JobState.RUNNING, launch_state=LAUNCHED))
    store.put(JobRecord("m", "bob~1"))
    store.put(JobRecord("other", "7"))
    store.record_file("m", "alice~4", "input", "a", 10)
    store.record_file("m", "alice~4", "input", "a", 12)
    page = store.page(PageQuery(owner="alice", limit=2))
    assert [r.job_id for r in page] == ["alice~4", "alice~3"]
    after = store.page(PageQuery(owner="alice", before=page[-1].seq, limit=10))
    assert [r.job_id for r in after] == ["alice~2", "alice~1", "alice~0"]
    assert [r.job_id for r in store.page(PageQuery(owner=""))] == ["7"]
    assert [r.job_id for r in store.page(PageQuery(manager="other"))] == ["7"]
    assert store.files_of(page)[("m", "alice~4")][0].size == 12
    assert store.uploaded_total("m", "alice~4", ("input", "b")) == 12
    assert store.launched_count("alice") == 5 and store.count() == 7


def test_users_on_both(store: JobStore) -> None:
    users = Users(store, Plans(), admin_token="pt")
    _, token = users.add("alice")
    assert users.identify(token).owner == "alice"
    with pytest.raises(UserExistsError):
        users.add("alice")
    users.add("bob")  # the failed insert left nothing half done
    assert [u.name for u in users.all()] == ["alice", "bob"]
    assert users.set_plan("alice", "premium").plan == "premium"
    assert users.authenticate(token) is not None
    users.revoke("alice")
    assert users.authenticate(token) is None


def test_a_dropped_postgresql_connection_is_made_again(tmp_path: Path) -> None:
    import psycopg

    with scratch_database("lwr_store") as url:
        store = JobStore(tmp_path / "state", url)
        try:
            store.put(JobRecord("m", "1"))
            assert store.get("m", "1") is not None  # this thread's reader is open now
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
            with pytest.raises(psycopg.OperationalError):
                store.get("m", "1")  # the request that finds out fails...
            assert store.get("m", "1") is not None  # ...the next one connects again
            with pytest.raises(psycopg.OperationalError):
                store.put(JobRecord("m", "2"))
            store.put(JobRecord("m", "2"))
            assert store.count() == 2
        finally:
            store.close()
