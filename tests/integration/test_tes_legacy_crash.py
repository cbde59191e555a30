"""The TES upgrade killed (SIGKILL) between two of its steps, then finished by the next start.

The old state is made as in tests/integration/test_tes_upgrade.py: tasks created by the current
server with the admin token, the server stopped, their rows given what the release before
namespaces wrote (owner label only, no files rows, newer tables dropped). Two are alice's and
bob's finished tasks, one is alice's, still running; one is the admin's own and must stay his.

The real server is then started, as a user starts it, with ``LWR_TES_TEST_CRASH_AT=<step>:<n>``
(lwr.tes.legacy's test-only hook), so it kills itself right after the n-th item of one step of
the move; ``n`` is worked out from the order the move takes (the tasks' ids) so that each case
stops at the task and place it names. The next start, without the variable, must finish the
move: each task in its owner's namespace exactly once (py-tes with their own token, ``GET
/jobs``, the dashboard), with its state, logs, input sizes and outputs, its row moved once, its
output not uploaded again, and the to-do table empty once the running task has finished.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import tes

from tests.integration.dashboard import DashboardClient
from tests.integration.postgres import scratch_database
from tests.integration.server import LwrServer, free_port, write_server_ini
from tests.integration.tes_legacy_support import Rows, wait_task
from tests.integration.tes_support import HttpStore, lwr_users

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

ADMIN = "admin-token"
CRASH = "LWR_TES_TEST_CRASH_AT"
MANAGERS = "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 4\n"
MOVED = "moved into their namespace"
#: the legacy tasks: name -> (owner, inputs: a list of (path, http file name or None, content))
LEGACY = {
    "alice-done": ("alice", [("/in/in.bin", "in.bin", None), ("/in/note", None, "four")]),
    "bob-done": ("bob", [("/in/a", None, "bob"), ("/in/b.bin", "b.bin", None)]),
    "running": ("alice", [("/in/word", None, "hello")]),
}
SIZES = {
    "alice-done": {"/in/in.bin": 700, "/in/note": 4},
    "bob-done": {"/in/a": 3, "/in/b.bin": 33},
    "running": {"/in/word": 5},
}


@dataclass(frozen=True)
class Cut:
    """Where the start is killed: after the ``item``-th item of ``step`` for ``task``; on the
    upgrade's start, or (``later``) on the first start after the running task finished;
    ``then``: the next starts killed too, at these ``<step>:<n>``, one each."""

    step: str
    task: str = ""
    item: int = 1
    later: bool = False
    then: tuple[str, ...] = ()

    def __str__(self) -> str:
        again = "".join(f"-then-{point}" for point in self.then)
        return (
            f"{self.step}-{self.task or 'all'}-{self.item}{'-later' if self.later else ''}{again}"
        )


CUTS = [
    Cut("scanned"),
    Cut("link-made", "running"),  # the temporary link made, the directory not renamed
    Cut("dir-renamed", "running"),  # renamed, the old name not yet a link
    Cut("link-placed", "running"),  # the link in place, the rows not renamed
    Cut("dir-renamed", "alice-done"),  # a finished task's directory moved, its rows not
    Cut("rows", "alice-done"),  # rows renamed, no input named yet
    Cut("rows", "running"),
    Cut("input", "alice-done", 1),  # between a task's two inputs
    Cut("input", "bob-done", 2),  # all its inputs named, its entry not removed
    Cut("input", "running", 1),
    Cut("entry", "bob-done"),
    Cut("link-removed", "running", later=True),  # the finished task's link gone, its entry not
    # killed again and again: each start moves one task's rows (redoing the last one's rest)
    Cut("rows", "", then=("rows:1", "rows:1", "input:1")),
]


def items(step: str, task: str) -> int:
    """How many times ``step``'s crash point is passed for ``task`` on a start."""
    running = task == "running"
    return {
        "dir-renamed": 1,
        "rows": 1,
        "input": len(LEGACY[task][1]),
        "entry": 0 if running else 1,  # the running task's entry stays while its link does
        "link-made": int(running),
        "link-placed": int(running),
        "link-removed": int(running),
    }[step]


def crash_at(cut: Cut, ids: dict[str, str]) -> str:
    """``<step>:<n>`` for the cut: tasks are moved in the order of their ids."""
    if not cut.task:
        return f"{cut.step}:{cut.item}"
    before = [name for name in LEGACY if ids[name] < ids[cut.task]]
    return f"{cut.step}:{sum(items(cut.step, name) for name in before) + cut.item}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with (
        scratch_database("lwr_tes_crash") if request.param == "postgresql" else nullcontext(None)
    ) as url:
        yield url


@pytest.mark.parametrize("cut", CUTS, ids=str)
def test_a_killed_upgrade_is_finished_by_the_next_start(
    tmp_path: Path, database: str | None, cut: Cut
) -> None:
    directory = tmp_path / "server"
    directory.mkdir()
    files = tmp_path / "http"
    files.mkdir()
    (files / "in.bin").write_bytes(b"i" * 700)
    (files / "b.bin").write_bytes(b"b" * 33)
    options = {"private_token": ADMIN, "tes_user_allowed_networks": "127.0.0.0/8"}
    options.update({"database_url": database} if database else {})
    port = free_port()
    write_server_ini(directory, port, options)
    (directory / "job_managers.ini").write_text(MANAGERS)
    tokens = {
        "alice": lwr_users(directory, "add", "alice", "--plan", "premium")["token"],
        "bob": lwr_users(directory, "add", "bob")["token"],
    }
    gate = tmp_path / "gate"
    server = LwrServer(directory, port, env=_environment(None)).start()
    with HttpStore(files) as http:
        try:
            _run(Upgrade(server, http, gate, Rows(directory, database), tokens), cut)
        finally:
            gate.touch()  # a failing run must not leave a task waiting for ever
            server.env = _environment(None)
            server.stop()


def _environment(crash: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH}
    return {**env, CRASH: crash} if crash else env


@dataclass
class Upgrade:
    server: LwrServer
    http: HttpStore
    gate: Path
    rows: Rows
    tokens: dict[str, str]

    @property
    def base(self) -> str:
        return self.server.url.rstrip("/")

    def client(self, who: str) -> tes.HTTPClient:
        return tes.HTTPClient(self.base, token=self.tokens.get(who, ADMIN), timeout=30)

    def start(self, crash: str | None = None) -> None:
        """A start; with ``crash``, one that must kill itself there (and so never serve)."""
        self.server.env = _environment(crash)
        if crash is None:
            self.server.start()
            return
        with pytest.raises(RuntimeError, match="LWR exited with -9"):
            self.server.start()
        self.server.process = None
        assert f"{CRASH}={crash}: killing this process now" in self.server.log()

    def create(self) -> dict[str, str]:
        """The tasks, as the admin token; the three legacy ones made old once stopped."""
        admin = self.client("admin")
        wait = f"while [ ! -e {self.gate} ]; do sleep 0.05; done; echo late > /out/late.txt"
        ids = {}
        for name, (_, inputs) in LEGACY.items():
            read = " ".join(path for path, _, _ in inputs)
            command = wait if name == "running" else f"cat {read} | wc -c; echo {name} > /out/r"
            ids[name] = admin.create_task(tes.Task(
                name=name, volumes=["/out"],
                inputs=[tes.Input(path=path, url=self.http.url(file) if file else None,
                                  content=content) for path, file, content in inputs],
                outputs=[tes.Output(path="/out/late.txt" if name == "running" else "/out/r",
                                    url=self.http.url(f"{name}.out"))],
                executors=[tes.Executor(image="x", command=["sh", "-c", command])],
            ))  # fmt: skip
        ids["admin"] = admin.create_task(tes.Task(
            name="admin", executors=[tes.Executor(image="x", command=["echo", "mine"])]
        ))  # fmt: skip
        for name in ("alice-done", "bob-done", "admin"):
            assert wait_task(admin, ids[name]).state == "COMPLETE"
        assert wait_task(admin, ids["running"], ("QUEUED", "INITIALIZING")).state == "RUNNING"
        self.server.stop()
        for name, (owner, _) in LEGACY.items():
            self.rows.make_old(ids[name], owner)
        self.rows.forget_newer_tables()
        return ids

    def check(self, ids: dict[str, str], running: str) -> None:
        """Every task once, in its owner's namespace, whole; ``running``: the last one's state."""
        states = {"alice-done": "COMPLETE", "bob-done": "COMPLETE", "running": running}
        for who in ("alice", "bob"):
            mine = [name for name, (owner, _) in LEGACY.items() if owner == who]
            client = self.client(who)
            listed = client.list_tasks(view="BASIC").tasks
            assert sorted((t.id, t.name) for t in listed) == sorted((ids[n], n) for n in mine)
            for name in mine:
                task = client.get_task(ids[name], view="FULL")
                assert task.state == states[name], (name, task.state)
                assert [o.url for o in task.outputs] == [self.http.url(f"{name}.out")]
                assert len(task.inputs) == len(LEGACY[name][1])
                if name != "running":
                    total = sum(SIZES[name].values())
                    assert task.logs[-1].logs[0].stdout.strip() == str(total)
            jobs = _get(self.base, self.tokens[who], "/jobs").json()["jobs"]
            assert sorted(j["id"] for j in jobs) == sorted(ids[n] for n in mine)
            sizes = {j["id"]: {f["name"]: f["size"] for f in j["inputs"]} for j in jobs}
            assert sizes == {ids[n]: SIZES[n] for n in mine}
            as_admin = _get(self.base, ADMIN, "/jobs", owner=who).json()["jobs"]
            assert sorted((j["id"], j["owner"]) for j in as_admin) == sorted(
                (ids[n], who) for n in mine
            )
            page = DashboardClient(self.base)
            page.sign_in(self.tokens[who])
            text = page.get("/ui/jobs").text
            shown = {n: len(re.findall(rf'href="/ui/jobs/{ids[n]}\?', text)) for n in LEGACY}
            assert shown == {n: int(n in mine) for n in LEGACY}, shown
        admin = self.client("admin").list_tasks(view="MINIMAL").tasks
        assert [t.id for t in admin] == [ids["admin"]]
        rows = self.rows.execute("SELECT job_id, owner FROM jobs ORDER BY job_id")
        expected = [(f"{LEGACY[n][0]}~{ids[n]}", LEGACY[n][0]) for n in LEGACY]
        assert sorted(rows) == sorted([*expected, (ids["admin"], "")])
        assert self.server.log().count(MOVED) == 3  # each row moved once over all starts
        uploads = [p for p in self.http.puts if p != "/running.out"]
        assert sorted(uploads) == ["/alice-done.out", "/bob-done.out"]  # not again
        assert self.http.puts.count("/running.out") == int(running == "COMPLETE")

    def entries(self) -> list[str]:
        return [row[1] for row in self.rows.execute("SELECT * FROM tes_legacy_tasks")]


def _run(upgrade: Upgrade, cut: Cut) -> None:
    ids = upgrade.create()
    staging = upgrade.server.directory / "files" / "staging"
    crash = crash_at(cut, ids)
    if not cut.later:
        upgrade.start(crash)
        for again in cut.then:
            upgrade.start(again)
    upgrade.start()
    upgrade.check(ids, "RUNNING")
    assert upgrade.entries() == [ids["running"]]  # kept while its old name is a link
    assert (staging / ids["running"]).is_symlink()
    for name in ("alice-done", "bob-done"):
        owner = LEGACY[name][0]
        assert not os.path.lexists(staging / ids[name])
        assert (staging / ".users" / owner / ids[name] / "working" / "out" / "r").exists()

    upgrade.gate.touch()
    assert wait_task(upgrade.client("alice"), ids["running"]).state == "COMPLETE"
    upgrade.server.stop()
    if cut.later:
        upgrade.start(crash)
    upgrade.start()
    upgrade.check(ids, "COMPLETE")
    assert upgrade.entries() == []
    assert not os.path.lexists(staging / ids["running"])
    late = staging / ".users" / "alice" / ids["running"] / "working" / "out" / "late.txt"
    assert late.read_text() == "late\n"
    assert not list(staging.glob(".moving-*"))


def _get(base: str, token: str, path: str, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(base + path, headers=headers, params=params, timeout=30)
