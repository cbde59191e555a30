"""A real upgrade: a service user's TES tasks from before namespaces, used with py-tes after it.

The old state is made the way the release before per-user TES namespaces (git 40e9cb9) made it,
which stored a user's task exactly as it stores the admin token's today but for the owner label.
So the tasks are created by the current server with the admin token, the server is stopped (a
running task runs on), and each row then gets what that release wrote and nothing else:
``"owner": "user:alice"`` in the launch record, no ``job`` key in it, no rows in the files table
(that release wrote neither), and the tables it did not have are dropped. Running 40e9cb9 itself
gave the same rows (the id as it is, an empty ``owner`` column, schema 3) and directories
(``<staging>/<id>``). The current server is then started on it, and alice, with py-tes, must
see, list and cancel her tasks, and see them in ``GET /jobs``; a task that was running through
the upgrade finishes at its new place, and the link left at its old one goes at the first start
after it finished.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
import requests
import tes

from tests.integration.postgres import scratch_database
from tests.integration.server import LwrServer, free_port, write_server_ini
from tests.integration.tes_legacy_support import Rows, wait_task
from tests.integration.tes_support import HttpStore, lwr_users

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

ADMIN = "admin-token"
MANAGERS = "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 4\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with (
        scratch_database("lwr_tes_upgrade")
        if request.param == "postgresql"
        else nullcontext(None) as url
    ):
        yield url


def test_users_old_tasks_are_theirs_after_the_upgrade(tmp_path: Path, database: str | None) -> None:
    directory = tmp_path / "server"
    directory.mkdir()
    (tmp_path / "http").mkdir()
    (tmp_path / "http" / "in.bin").write_bytes(b"i" * 700)
    options = {"private_token": ADMIN, **({"database_url": database} if database else {})}
    port = free_port()
    write_server_ini(directory, port, options)
    (directory / "job_managers.ini").write_text(MANAGERS)
    alice = lwr_users(directory, "add", "alice", "--plan", "premium")["token"]
    bob = lwr_users(directory, "add", "bob")["token"]
    gate = tmp_path / "gate"
    server = LwrServer(directory, port).start()
    with HttpStore(tmp_path / "http") as http:
        try:
            _run_upgrade(server, http, gate, Rows(directory, database), alice, bob)
        finally:
            gate.touch()  # a failing run must not leave a task waiting for ever
            server.stop()


def _run_upgrade(
    server: LwrServer, http: HttpStore, gate: Path, rows: Rows, alice: str, bob: str
) -> None:
    base = server.url.rstrip("/")
    old = tes.HTTPClient(base, token=ADMIN, timeout=30)
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done; echo late > /out/late.txt"
    inputs = [tes.Input(path="/in/in.bin", url=http.url("in.bin")),
              tes.Input(path="/in/note", content="four")]  # fmt: skip
    finished = old.create_task(tes.Task(
        name="finished", inputs=inputs, volumes=["/out"],
        executors=[tes.Executor(image="x", command=["sh", "-c", "wc -c < /in/in.bin"])],
    ))  # fmt: skip
    running = old.create_task(tes.Task(
        name="running", volumes=["/out"],
        executors=[tes.Executor(image="x", command=["sh", "-c", wait])],
    ))  # fmt: skip
    doomed = old.create_task(tes.Task(
        name="doomed", executors=[tes.Executor(image="x", command=["sh", "-c", wait])]
    ))  # fmt: skip
    assert wait_task(old, finished).state == "COMPLETE"
    for task_id in (running, doomed):
        assert wait_task(old, task_id, ("QUEUED", "INITIALIZING")).state == "RUNNING"
    server.stop()
    for task_id in (finished, running, doomed):
        rows.make_old(task_id, "alice")
    rows.forget_newer_tables()
    staging = server.directory / "files" / "staging"
    assert (staging / running / "metadata").is_dir()

    server.start()  # the upgrade
    mine = tes.HTTPClient(base, token=alice, timeout=30)
    listed = mine.list_tasks(view="BASIC").tasks
    assert [(t.id, t.name) for t in listed] == [
        (doomed, "doomed"), (running, "running"), (finished, "finished")
    ]  # fmt: skip
    done = mine.get_task(finished, view="FULL")
    assert done.state == "COMPLETE" and done.logs[0].logs[0].stdout.strip() == "700"
    jobs = _get(base, alice, "/jobs").json()["jobs"]
    assert {j["id"]: j["kind"] for j in jobs} == dict.fromkeys((finished, running, doomed), "tes")
    sizes = {j["id"]: {f["name"]: f["size"] for f in j["inputs"]} for j in jobs}
    assert sizes[finished] == {"/in/in.bin": 700, "/in/note": 4}
    as_admin = _get(base, ADMIN, "/jobs", owner="alice").json()["jobs"]
    assert {j["owner"] for j in as_admin} == {"alice"} and len(as_admin) == 3
    assert old.list_tasks(view="MINIMAL").tasks == []  # the admin token never saw them
    for who in (bob, ADMIN):
        assert _get(base, who, f"/ga4gh/tes/v1/tasks/{running}").status_code == 404

    mine.cancel_task(doomed)
    assert wait_task(mine, doomed).state == "CANCELED"
    new_place = staging / ".users" / "alice" / running
    assert (staging / running).is_symlink() and new_place.is_dir()
    gate.touch()
    assert wait_task(mine, running).state == "COMPLETE"
    assert (new_place / "working" / "out" / "late.txt").read_text() == "late\n"
    server.restart()
    assert not (staging / running).exists() and not (staging / finished).exists()
    assert mine.get_task(running).state == "COMPLETE"
    assert server.log().count("moved into their namespace") == 3  # once each, on the upgrade


def _get(base: str, token: str, path: str, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(base + path, headers=headers, params=params, timeout=30)
