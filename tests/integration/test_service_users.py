"""Service users end to end, on SQLite and on PostgreSQL: a real server started as users start it.

Users are made with the admin command (``lwr users add``, run in the server's directory) and over
the admin routes; Galaxy's client (``pulsar.client``) runs jobs with a user's token as its
``private_token``; everything else is plain HTTP. Each module-scoped server runs once per
database (a PostgreSQL database of its own, created and dropped here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration import service_support
from tests.integration.galaxy_job import GalaxyJob
from tests.integration.service_support import ADMIN, Service

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

#: the module-scoped server of service_support, one per database, for this module
service = service_support.service


@pytest.fixture(scope="module")
def finished(service: Service) -> Service:
    """alice's job ``7`` finished, with an input and an output."""
    service.run_job("alice", "7", "cat {i}/a.txt > {o}/out.txt", **{"a.txt": b"alice's data\n"})
    assert service.wait("alice", "7")["status"] == "complete"
    return service


def test_same_job_id_from_two_users_and_galaxy_is_three_jobs(
    service: Service, tmp_path: Path
) -> None:
    """Galaxy's client, run at once by alice, bob and the admin token, all with job id ``42``."""
    import threading

    runs = {"alice": 1, "bob": 3, "admin": 2}
    jobs = {
        who: GalaxyJob(
            tmp_path / who,
            config_text=f"--lines {lines}",
            private_token=ADMIN if who == "admin" else service.tokens[who],
        )
        for who, lines in runs.items()
    }
    results: dict[str, Any] = {}

    def run(who: str) -> None:
        try:
            results[who] = jobs[who].run(service.server.url, "42")
        except BaseException as exc:  # reported below, in the test's thread
            results[who] = exc

    threads = [threading.Thread(target=run, args=(who,)) for who in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for who, lines in runs.items():
        assert not isinstance(results[who], BaseException), (who, results[who])
        assert results[who]["status"] == "complete", results[who]
        assert jobs[who].output.read_text().splitlines() == ["one", "two", "three"][:lines]


def test_same_job_id_keeps_directories_and_states_apart(service: Service) -> None:
    alice = service.setup_job("alice", "dup")
    service.call("alice", "POST", "jobs/dup/files", b"mine", name="a.txt", type="input")
    bob = service.run_job("bob", "dup", "echo bob > {o}/who.txt")
    admin = service.setup_job("admin", "dup")
    staging = service.server.directory / "files" / "staging"
    assert Path(alice["job_directory"]) == staging / ".users" / "alice" / "dup"
    assert Path(bob["job_directory"]) == staging / ".users" / "bob" / "dup"
    assert Path(admin["job_directory"]) == staging / "dup"  # Pulsar's layout, unchanged
    assert alice["job_id"] == bob["job_id"] == admin["job_id"] == "dup"
    assert service.wait("bob", "dup")["status"] == "complete"
    assert service.call("alice", "GET", "jobs/dup/status")[1]["status"] == "preprocessing"
    assert service.call("admin", "GET", "jobs/dup/status")[1]["status"] == "preprocessing"
    assert not (Path(bob["inputs_directory"]) / "a.txt").exists()
    assert (Path(alice["inputs_directory"]) / "a.txt").read_bytes() == b"mine"
    for who in ("alice", "bob", "admin"):
        assert service.call(who, "DELETE", "jobs/dup")[0] == 200
    assert not Path(alice["job_directory"]).exists()


def test_a_named_managers_user_jobs_have_their_own_namespace(service: Service) -> None:
    staging = service.server.directory / "files" / "staging"
    status, answer = service.call("alice", "POST", "managers/big/jobs", job_id="m1")
    assert status == 200, answer
    assert Path(answer["job_directory"]) == staging / "big" / ".users" / "alice" / "m1"
    listed = _listing(service, "alice", "managers/big/jobs")["jobs"]
    assert [(job["id"], job["manager"]) for job in listed] == [("m1", "big")]
    assert service.call("alice", "GET", "jobs/m1/status")[1]["status"] == "lost"  # not _default_'s
    assert service.call("bob", "GET", "managers/big/jobs/m1/status")[1]["status"] == "lost"
    assert service.call("alice", "DELETE", "managers/big/jobs/m1")[0] == 200


REQUESTS = [
    ("GET", "jobs/{id}/status", {}),
    ("GET", "jobs/{id}/files", {"name": "out.txt", "type": "output"}),
    ("GET", "jobs/{id}/files/path", {"name": "a.txt", "type": "input"}),
    ("POST", "jobs/{id}/files", {"name": "b.txt", "type": "input"}),
    ("POST", "jobs/{id}/submit", {"command_line": "true"}),
    ("PUT", "jobs/{id}/cancel", {}),
    ("DELETE", "jobs/{id}", {}),
]


@pytest.mark.parametrize(("method", "path", "params"), REQUESTS)
def test_another_users_job_answers_as_an_unknown_one(
    finished: Service, method: str, path: str, params: dict[str, str]
) -> None:
    """bob asking for alice's job ``7`` gets what the admin token, which has no ``7``, gets."""
    body = b"x" if method == "POST" and "files" in path else None
    as_bob = finished.call("bob", method, path.format(id="7"), body, **params)
    unknown = finished.call("admin", method, path.format(id="7"), body, **params)
    assert as_bob == unknown
    if "status" in path:
        assert as_bob[0] == 200 and as_bob[1]["status"] == "lost"
    else:
        assert as_bob[0] == 404, as_bob
    # and alice's job is untouched
    assert finished.call("alice", "GET", "jobs/7/status")[1]["status"] == "complete"
    status, data = finished.call("alice", "GET", "jobs/7/files", name="out.txt", type="output")
    assert (status, data) == (200, b"alice's data\n")


def _listing(service: Service, who: str, path: str = "jobs", **params: Any) -> dict[str, Any]:
    status, body = service.call(who, "GET", path, **params)
    assert status == 200, body
    return dict(body)


def test_listing_shows_the_callers_jobs_newest_first(finished: Service) -> None:
    for job_id in ("p1", "p2", "p3", "p4", "p5"):
        finished.setup_job("alice", job_id)
    finished.setup_job("bob", "p1")
    mine = _listing(finished, "alice")["jobs"]
    ids = [job["id"] for job in mine]
    assert ids[:5] == ["p5", "p4", "p3", "p2", "p1"] and "7" in ids
    seven = next(job for job in mine if job["id"] == "7")
    assert seven["state"] == "complete" and seven["results_available"] is True
    assert seven["inputs"] == [{"name": "a.txt", "type": "input", "size": 13}]
    assert seven["archived"] is False and seven["restoring"] is False
    assert seven["submitted"].endswith("Z") and seven["finished"] >= seven["submitted"]
    assert mine[0]["finished"] is None and mine[0]["state"] == "setup"
    assert "owner" not in seven
    assert [job["id"] for job in _listing(finished, "bob")["jobs"]][:1] == ["p1"]
    assert "7" not in [job["id"] for job in _listing(finished, "bob")["jobs"]]
    complete = _listing(finished, "alice", state="complete")["jobs"]
    assert {job["state"] for job in complete} == {"complete"} and "7" in [j["id"] for j in complete]
    per_manager = _listing(finished, "alice", "managers/_default_/jobs")["jobs"]
    assert per_manager == mine


def test_listing_pages_and_the_admin_sees_every_owner(finished: Service) -> None:
    everything = _listing(finished, "alice", limit=500)["jobs"]
    seen, token = [], None
    while True:
        params = {"limit": 2, **({"page_token": token} if token else {})}
        page = _listing(finished, "alice", **params)
        assert len(page["jobs"]) <= 2
        seen.extend(page["jobs"])
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == everything
    admin = _listing(finished, "admin", limit=500)["jobs"]
    owners = {(job["owner"], job["id"]) for job in admin}
    assert ("alice", "7") in owners and ("bob", "p1") in owners
    only_bob = _listing(finished, "admin", owner="bob")["jobs"]
    assert only_bob and {job["owner"] for job in only_bob} == {"bob"}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "x"},
        {"page_token": "bm9wZQ"},
        {"state": "sleeping"},
        {"owner": "bob"},
    ],
)
def test_listing_refuses_bad_parameters(service: Service, params: dict[str, str]) -> None:
    status, body = service.call("alice", "GET", "jobs", **params)
    assert status == 400 and "error" in body


def test_listing_of_an_unknown_manager_is_404(service: Service) -> None:
    assert service.call("alice", "GET", "managers/nope/jobs")[0] == 404


def test_jobs_over_the_running_limit_wait_queued(service: Service) -> None:
    """bob's plan runs one job at a time: the second waits, then runs when the first ends."""
    service.run_job("bob", "slow", "sleep 60")
    service.wait("bob", "slow", ("running",))
    service.run_job("bob", "fast", "echo done > {o}/x")
    service.run_job("pat", "other", "echo done > {o}/x")  # others are not held up by bob
    assert service.wait("pat", "other")["status"] == "complete"
    assert service.call("bob", "GET", "jobs/fast/status")[1]["status"] == "queued"
    assert service.call("bob", "PUT", "jobs/slow/cancel")[0] == 200
    assert service.wait("bob", "fast")["status"] == "complete"
    for job_id in ("slow", "fast"):
        service.call("bob", "DELETE", f"jobs/{job_id}")


def test_admin_command_round_trip(service: Service) -> None:
    added = service.lwr_users("add", "carol")
    token = added["token"]
    assert added["user"]["plan"] == "free" and token.startswith("lwr_")
    assert service.server.request("GET", "jobs", {"private_token": token})[0] == 200
    assert "carol" in [user["name"] for user in service.lwr_users("list")["users"]]
    shown = service.lwr_users("show", "carol")
    assert shown["limits"]["max_input_size"] == 150_000
    assert service.lwr_users("set-plan", "carol", "premium")["user"]["plan"] == "premium"
    plans = service.server.request("GET", "plans", {"private_token": token})[1]
    assert plans["current"] == "premium"
    assert service.lwr_users("revoke", "carol")["user"]["active"] is False
    status, body = service.server.request("GET", "jobs", {"private_token": token})
    assert status == 403 and "error" in body
    # nothing of the token is kept in clear
    assert token not in service.server.log()


def test_admin_routes_round_trip(service: Service) -> None:
    status, added = service.call("admin", "POST", "users", name="dave", plan="premium")
    assert status == 200 and added["user"]["plan"] == "premium"
    service.tokens["dave"] = added["token"]
    assert service.call("dave", "GET", "jobs")[0] == 200
    assert service.call("dave", "GET", "users")[0] == 403  # a user is no admin
    assert service.call("dave", "POST", "users", name="eve")[0] == 403
    names = [user["name"] for user in service.call("admin", "GET", "users")[1]["users"]]
    assert "dave" in names and "alice" in names
    status, shown = service.call("admin", "GET", "users/dave")
    assert status == 200 and shown["limits"]["max_running_jobs"] == 4
    assert service.call("admin", "PUT", "users/dave/plan", plan="free")[1]["user"]["plan"] == "free"
    assert service.call("admin", "PUT", "users/dave/plan", plan="gold")[0] == 400
    assert service.call("admin", "POST", "users", name="dave")[0] == 409
    assert service.call("admin", "POST", "users", name="Not A Name")[0] == 400
    assert service.call("admin", "GET", "users/nobody")[0] == 404
    assert service.call("admin", "DELETE", "users/dave")[1]["user"]["active"] is False
    assert service.call("dave", "GET", "jobs")[0] == 403


def test_jobs_and_users_survive_a_restart(finished: Service) -> None:
    before = _listing(finished, "alice", limit=500)
    finished.server.restart()
    assert _listing(finished, "alice", limit=500) == before
    assert finished.call("alice", "GET", "jobs/7/status")[1]["status"] == "complete"
    assert finished.call("bob", "GET", "jobs/7/status")[1]["status"] == "lost"
