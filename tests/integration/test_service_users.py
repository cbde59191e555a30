"""Service users end to end, on SQLite and on PostgreSQL: a real server started as users start it.

Users are made with the admin command (``lwr users add``, run in the server's directory) and over
the admin routes; Galaxy's client (``pulsar.client``) runs jobs with a user's token as its
``private_token``; everything else is plain HTTP. Each module-scoped server runs once per
database (a PostgreSQL database of its own, created and dropped here).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.galaxy_job import GalaxyJob
from tests.integration.postgres import scratch_database
from tests.integration.server import BIN, LwrServer, free_port, write_server_ini

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

ADMIN = "admin-token"
PLANS = """\
free: {max_input_size: 150 KB, max_total_input: 250 KB, max_running_jobs: 1}
premium: {max_running_jobs: 4}
"""
MANAGERS = """\
[manager:_default_]
type = queued_python
max_concurrent_jobs = 4

[manager:big]
type = queued_python
"""
FINAL = ("complete", "failed", "cancelled", "lost")


@dataclass
class Service:
    server: LwrServer
    tokens: dict[str, str]

    def call(
        self, who: str, method: str, path: str, body: bytes | None = None, **params: Any
    ) -> tuple[int, Any]:
        token = ADMIN if who == "admin" else self.tokens[who]
        return self.server.request(method, path, {**params, "private_token": token}, body)

    def lwr_users(self, *args: str) -> dict[str, Any]:
        """``lwr users --json ARGS`` in the server's directory, as an admin types it."""
        done = subprocess.run(
            [str(BIN / "lwr"), "users", "--json", *args],
            cwd=self.server.directory,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def setup_job(self, who: str, job_id: str) -> dict[str, Any]:
        status, answer = self.call(who, "POST", "jobs", job_id=job_id)
        assert status == 200, answer
        return dict(answer)

    def run_job(self, who: str, job_id: str, command: str, **upload: bytes) -> dict[str, Any]:
        """Set up, upload ``name=bytes`` inputs, submit ``command`` (``{in}``/``{out}`` filled)."""
        answer = self.setup_job(who, job_id)
        for name, data in upload.items():
            status, body = self.call(
                who, "POST", f"jobs/{job_id}/files", data, name=name, type="input"
            )
            assert status == 200, body
        line = command.format(i=answer["inputs_directory"], o=answer["outputs_directory"])
        status, body = self.call(who, "POST", f"jobs/{job_id}/submit", command_line=line)
        assert status == 200, body
        return answer

    def wait(self, who: str, job_id: str, states: tuple[str, ...] = FINAL) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = self.call(who, "GET", f"jobs/{job_id}/status")
            assert status == 200, body
            if body["status"] in states:
                return dict(body)
            time.sleep(0.1)
        raise AssertionError(f"{who}'s job {job_id} never reached {states}: {body}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """One server per database with users alice, bob (free) and pat (premium)."""
    with _database(request.param) as url:
        directory = tmp_path_factory.mktemp(f"service_{request.param}")
        (directory / "plans.yml").write_text(PLANS)
        options = {"private_token": ADMIN, "plans": "plans.yml"}
        if url:
            options["database_url"] = url
        port = free_port()
        write_server_ini(directory, port, options)
        (directory / "job_managers.ini").write_text(MANAGERS)
        server = LwrServer(directory, port)
        service = Service(server, {})
        for name in ("alice", "bob"):
            service.tokens[name] = service.lwr_users("add", name)["token"]
        service.tokens["pat"] = service.lwr_users("add", "pat", "--plan", "premium")["token"]
        server.start()
        try:
            yield service
        finally:
            server.stop()


@pytest.fixture(scope="module")
def finished(service: Service) -> Service:
    """alice's job ``7`` finished, with an input and an output."""
    service.run_job("alice", "7", "cat {i}/a.txt > {o}/out.txt", **{"a.txt": b"alice's data\n"})
    assert service.wait("alice", "7")["status"] == "complete"
    return service


def _database(kind: str) -> Any:
    if kind == "postgresql":
        return scratch_database("lwr_service_users")
    from contextlib import nullcontext

    return nullcontext(None)


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


def _inputs(answer: dict[str, Any]) -> list[str]:
    return sorted(p.name for p in Path(answer["inputs_directory"]).iterdir())


def test_oversized_upload_is_refused_before_it_is_stored(service: Service) -> None:
    answer = service.setup_job("alice", "big")
    status, body = service.call(
        "alice", "POST", "jobs/big/files", b"x" * 200_000, name="huge.dat", type="input"
    )
    assert status == 413
    assert body == {
        "error": body["error"],
        "limit": "max_input_size",
        "limit_bytes": 150_000,
        "size": 200_000,
        "plan": "free",
        "allowed_by": "premium",
    }
    assert "max_input_size" in body["error"] and "premium" in body["error"]
    assert _inputs(answer) == []
    status, body = _chunked_upload(service, "alice", "big", "huge.dat", 200_000)
    assert status == 413 and body["limit"] == "max_input_size", body
    assert body["size"] > 150_000
    assert _inputs(answer) == [] and not list(Path(answer["job_directory"]).rglob(".upload-*"))


def test_total_input_limit_counts_the_jobs_files(service: Service) -> None:
    answer = service.setup_job("alice", "total")
    for name in ("a.dat", "b.dat", "a.dat"):  # a.dat again replaces the first, not adds
        status, body = service.call(
            "alice", "POST", "jobs/total/files", b"y" * 100_000, name=name, type="input"
        )
        assert status == 200, body
    status, body = service.call(
        "alice", "POST", "jobs/total/files", b"z" * 100_000, name="c.dat", type="input"
    )
    assert status == 413
    assert (body["limit"], body["limit_bytes"], body["size"]) == (
        "max_total_input",
        250_000,
        100_000,
    )
    assert body["allowed_by"] == "premium"
    assert _inputs(answer) == ["a.dat", "b.dat"]


def test_uploads_at_once_cannot_pass_the_total_together(service: Service) -> None:
    """Eight 100 KB uploads into one job at once, 250 KB allowed: two land, six are refused.

    Each upload sends its headers and half its body, then all wait a moment in the server (so
    without the per-job serialisation every one would be checked against an empty job), then
    the other halves follow.
    """
    from urllib.parse import urlencode

    answer = service.setup_job("alice", "race")
    connections = []
    for n in range(8):
        query = urlencode(
            {"name": f"part{n}", "type": "input", "private_token": service.tokens["alice"]}
        )
        connection = http.client.HTTPConnection("127.0.0.1", service.server.port, timeout=30)
        connection.putrequest("POST", f"/jobs/race/files?{query}")
        connection.putheader("Content-Length", "100000")
        connection.endheaders()
        connection.send(b"r" * 50_000)
        connections.append(connection)
    time.sleep(0.5)  # all eight reach the server; the answer does not depend on this
    for connection in connections:  # every rest first: the one holding the job may be any
        try:
            connection.send(b"r" * 50_000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused already, without reading the rest
    statuses = []
    for connection in connections:
        statuses.append(connection.getresponse().status)
        connection.close()
    assert sorted(statuses) == [200, 200] + [413] * 6
    assert len(_inputs(answer)) == 2
    service.call("alice", "DELETE", "jobs/race")


def test_the_admin_and_premium_are_not_held_to_free_limits(service: Service) -> None:
    for who in ("admin", "pat"):
        service.setup_job(who, "large")
        status, body = service.call(
            who, "POST", "jobs/large/files", b"x" * 400_000, name="large.dat", type="input"
        )
        assert (status, body["size"]) == (200, 400_000)
        service.call(who, "DELETE", "jobs/large")


def test_the_file_cache_is_the_admins(service: Service) -> None:
    """A shared cache would let one user read what another staged: users get 403."""
    service.setup_job("alice", "cached")
    status, body = service.call(
        "alice", "POST", "jobs/cached/files", None, name="a", type="input", cache_token="tok"
    )
    assert status == 403 and "admin" in body["error"]
    token = service.tokens["alice"]
    status = service.server.request("GET", "cache/status", {"path": "/x", "private_token": token})
    assert status[0] == 403
    service.call("alice", "DELETE", "jobs/cached")


def test_server_side_staging_is_the_admins(service: Service) -> None:
    """Staged by the server, inputs would pass the plan's limits: a user uploads them."""
    service.setup_job("alice", "pull")
    remote = {
        "setup": [
            {
                "name": "a.dat",
                "type": "input",
                "action": {"action_type": "remote_transfer", "url": "http://x/a"},
            }
        ]
    }
    status, body = service.call(
        "alice", "POST", "jobs/pull/submit", command_line="true", remote_staging=json.dumps(remote)
    )
    assert status == 403 and "remote_staging" in body["error"]
    assert service.call("alice", "GET", "jobs/pull/status")[1]["status"] == "preprocessing"
    service.call("alice", "DELETE", "jobs/pull")


def _chunked_upload(
    service: Service, who: str, job_id: str, name: str, size: int
) -> tuple[int, Any]:
    """An upload with ``Transfer-Encoding: chunked`` (no Content-Length), 16 KiB a chunk."""
    from urllib.parse import urlencode

    query = urlencode({"name": name, "type": "input", "private_token": service.tokens[who]})
    connection = http.client.HTTPConnection("127.0.0.1", service.server.port, timeout=30)
    chunks = (b"c" * 16384 for _ in range(size // 16384 + 1))
    try:
        connection.request(
            "POST", f"/jobs/{job_id}/files?{query}", body=chunks, encode_chunked=True
        )
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the whole body is sent
    response = connection.getresponse()
    answer = response.status, json.loads(response.read())
    connection.close()
    return answer


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
