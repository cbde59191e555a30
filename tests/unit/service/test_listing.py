"""Job listings over a real (SQLite) store: scope, filters, keyset paging, what a job shows."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.errors import InvalidRequestError
from lwr.managers.base import JobState
from lwr.persistence.store import JobRecord, JobStore
from lwr.service import listing
from lwr.service.store import User
from lwr.service.users import ADMIN, Caller

ALICE = Caller(User("alice", "free", 0.0, 0.0))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    job_store = JobStore(tmp_path / "state")
    for n in range(6):
        job_store.put(JobRecord("m", f"alice~{n}", launch={"setup": {"tool_id": "cat"}}))
    job_store.put(JobRecord("m", "galaxy1"))
    job_store.put(JobRecord("other", "bob~1"))
    done = job_store.put(job_store.get("m", "alice~2").evolve(state=JobState.COMPLETE))  # type: ignore[union-attr]
    job_store.record_file("m", done.job_id, "input", "b.txt", 5)
    job_store.record_file("m", done.job_id, "input", "a.txt", 7)
    yield job_store
    job_store.close()


def ids(page: dict[str, object]) -> list[str]:
    return [job["id"] for job in page["jobs"]]  # type: ignore[attr-defined, index]


def test_a_user_sees_their_jobs_newest_first(store: JobStore) -> None:
    page = listing.list_jobs(store, listing.query_for(ALICE, None), show_owner=False)
    assert ids(page) == ["5", "4", "3", "2", "1", "0"] and page["next_page_token"] is None
    done = next(job for job in page["jobs"] if job["id"] == "2")  # type: ignore[attr-defined]
    assert done["inputs"] == [
        {"name": "a.txt", "type": "input", "size": 7},
        {"name": "b.txt", "type": "input", "size": 5},
    ]
    assert done["results_available"] and done["finished"] and done["tool_id"] == "cat"
    assert (done["archived"], done["restoring"]) == (False, False) and "owner" not in done


def test_the_admin_sees_everyone_or_one_owner(store: JobStore) -> None:
    everyone = listing.list_jobs(store, listing.query_for(ADMIN, None), show_owner=True)
    owners = [(job["owner"], job["id"]) for job in everyone["jobs"]]  # type: ignore[attr-defined]
    assert owners[:2] == [("bob", "1"), (None, "galaxy1")] and len(owners) == 8
    galaxy = listing.query_for(ADMIN, None, owner="-")
    assert ids(listing.list_jobs(store, galaxy, True)) == ["galaxy1"]
    on_other = listing.query_for(ADMIN, "other")
    assert ids(listing.list_jobs(store, on_other, True)) == ["1"]


def test_state_filter_and_pages(store: JobStore) -> None:
    query = listing.query_for(ALICE, None, states="complete,setup", limit="4")
    first = listing.list_jobs(store, query, False)
    assert ids(first) == ["5", "4", "3", "2"] and first["next_page_token"]
    query = listing.query_for(ALICE, None, "complete,setup", "4", first["next_page_token"])  # type: ignore[arg-type]
    second = listing.list_jobs(store, query, False)
    assert ids(second) == ["1", "0"] and second["next_page_token"] is None
    only = listing.query_for(ALICE, None, states="complete")
    assert ids(listing.list_jobs(store, only, False)) == ["2"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"states": "done"},
        {"page_token": "!!"},
        {"page_token": "c2VxOng"},
        {"page_token": base64.urlsafe_b64encode(b"seq:" + b"9" * 30).decode()},  # overflow
        {"page_token": base64.urlsafe_b64encode("seq:²".encode()).decode()},
        {"owner": "bob"},
    ],
)
def test_bad_parameters_are_400(kwargs: dict[str, str]) -> None:
    with pytest.raises(InvalidRequestError):
        listing.query_for(ALICE, None, **kwargs)


def test_the_listing_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m bench.listing`` on a small store: every case answers a full page."""
    import json

    from bench import listing as bench_listing

    assert bench_listing.main(["--jobs", "12000", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["jobs"] == 12000 and document["database"] == "sqlite"
    assert all(case["jobs"] == 50 for case in document["pages"].values())
    assert all("INDEX" in " ".join(steps) for steps in document["sqlite_plans"].values())


def test_a_tes_task_is_listed_with_its_kind(store: JobStore) -> None:
    from lwr.tes.staging import LAUNCH_KEY

    launch = {LAUNCH_KEY: {"task": {"executors": []}, "owner": "user:alice"}}
    store.put(JobRecord("_default_", "alice~3f2a", state=JobState.QUEUED, launch=launch))
    store.put(JobRecord("_default_", "alice~7", launch={"setup": {"tool_id": "cat1"}}))
    query = listing.query_for(ALICE, None)
    jobs = listing.list_jobs(store, query, show_owner=False)["jobs"]
    kinds = {job["id"]: (job["kind"], job["tool_id"]) for job in jobs}
    assert kinds["3f2a"] == ("tes", None) and kinds["7"] == ("pulsar", "cat1")
