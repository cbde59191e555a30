"""The TES 1.1 face driven by ``py-tes`` (PyPI), a client nobody here wrote, on the local manager.

One server for the module, started as users start it (``paster serve``), with a private token and
an allowed directory for ``file://``; an :class:`HttpStore` plays the ``http(s)`` storage. Every
2xx answer, whether py-tes or a raw request asked, is validated against the GA4GH TES 1.1.0
OpenAPI document (openapi-core; :class:`TesSchema`). The last test kills the server with
``kill -9`` while a task runs and checks the task completes after the restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import tes

from tests.integration.server import LwrServer, free_port, write_server_ini
from tests.integration.tes_support import HttpStore, TesSchema

pytestmark = pytest.mark.integration

TOKEN = "tes-test-token"
MANAGERS = """[manager:_default_]
type = queued_python
max_concurrent_jobs = 4

[manager:other]
type = queued_python

[manager:single]
type = queued_python
max_concurrent_jobs = 1
"""


class Site:
    """The module's server, storage and schema check, with a raw-request helper."""

    def __init__(self, server: LwrServer, store: HttpStore, allowed: Path, schema: TesSchema):
        self.server, self.store, self.allowed, self.schema = server, store, allowed, schema

    @property
    def base(self) -> str:
        return self.server.url.rstrip("/")

    def client(self, prefix: str = "") -> tes.HTTPClient:
        return tes.HTTPClient(self.base + prefix, token=TOKEN, timeout=30)

    def raw(self, method: str, path: str, token: str | None = TOKEN, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.request(method, self.base + path, headers=headers, timeout=30, **kw)
        self.schema.check(response)
        return response

    def wait(self, task_id: str, prefix: str = "", timeout: float = 60) -> tes.Task:
        """Poll until the task is final (not a timing assertion: a generous bound)."""
        client = self.client(prefix)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = client.get_task(task_id, view="FULL")
            if task.state not in ("QUEUED", "INITIALIZING", "RUNNING", "CANCELING"):
                return task
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} not final: {task.state}\n{self.server.log()}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("tes")
    allowed = base / "allowed"
    (allowed / "indir" / "sub").mkdir(parents=True)
    directory = base / "server"
    directory.mkdir()
    port = free_port()
    write_server_ini(
        directory, port, {"private_token": TOKEN, "remote_copy_allowed_paths": str(allowed)}
    )
    (directory / "job_managers.ini").write_text(MANAGERS)
    schema = TesSchema()
    original = {name: getattr(tes.client.requests, name) for name in ("get", "post")}

    def checked(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            response = original[name](*args, **kwargs)
            schema.check(response)
            return response

        return call

    server = LwrServer(directory, port).start()
    with HttpStore(base / "http") as store:
        (base / "http").mkdir()
        for name in original:
            setattr(tes.client.requests, name, checked(name))
        try:
            yield Site(server, store, allowed, schema)
        finally:
            for name, function in original.items():
                setattr(tes.client.requests, name, function)
            server.stop()
            schema.close()


def test_service_info(site: Site) -> None:
    info = site.client().get_service_info()
    assert info.type["artifact"] == "tes" and info.type["version"] == "1.1.0"
    assert f"file://{site.allowed}" in info.storage and "https://" in info.storage
    answer = site.raw("GET", "/ga4gh/tes/v1/service-info", token=None).json()
    assert "container_runtime = none" in answer["description"]
    assert "images are NOT used" in answer["description"]
    assert "other (queued_python), single (queued_python)" in answer["description"]
    other = site.raw("GET", "/managers/other/ga4gh/tes/v1/service-info").json()
    assert other["id"] == "org.lwr.tes.other" and "'other'" in other["description"]


def test_full_task(site: Site) -> None:
    """Every input kind, two executors sharing a volume, redirections, every output kind."""
    (site.store.root / "remote.txt").write_text("from http\n")
    (site.allowed / "local.txt").write_text("from file\n")
    (site.allowed / "indir" / "a.txt").write_text("A")
    (site.allowed / "indir" / "sub" / "b.txt").write_text("BB")
    task = tes.Task(
        name="full",
        tags={"suite": "tes", "kind": "full"},
        inputs=[
            tes.Input(path="/data/content.txt", content="literal\n"),
            tes.Input(path="/data/remote.txt", url=site.store.url("remote.txt"), streamable=True),
            tes.Input(path="/data/local.txt", url=f"file://{site.allowed}/local.txt"),
            tes.Input(path="/data/dir", url=f"file://{site.allowed}/indir", type="DIRECTORY"),
        ],
        volumes=["/vol"],
        executors=[
            tes.Executor(
                image="alpine",
                command=[
                    "sh",
                    "-c",
                    "cat content.txt remote.txt local.txt > /vol/joined; "
                    "echo $GREETING; echo to-stderr >&2",
                ],
                workdir="/data",
                env={"GREETING": "hello /data"},
            ),
            tes.Executor(
                image="alpine",
                command=["tr", "a-z", "A-Z"],
                stdin="/vol/joined",
                stdout="/out/upper.txt",
                stderr="/out/err.txt",
            ),
            tes.Executor(
                image="alpine",
                command=[
                    "sh",
                    "-c",
                    "mkdir -p /out/many/x && echo 1 > /out/many/one.csv && "
                    "echo 22 > /out/many/x/two.csv && cp -r /data/dir /out/copied",
                ],
            ),
        ],
        outputs=[
            tes.Output(path="/out/upper.txt", url=f"file://{site.allowed}/results/upper.txt"),
            tes.Output(path="/out/upper.txt", url=site.store.url("put/upper.txt")),
            tes.Output(path="/out/many/*.csv", path_prefix="/out/many", url=site.store.url("g")),
            tes.Output(path="/out/copied", url=site.store.url("d"), type="DIRECTORY"),
        ],
    )
    task_id = site.client().create_task(task)
    done = site.wait(task_id)
    assert done.state == "COMPLETE", (done, site.server.log())
    upper = (site.allowed / "results" / "upper.txt").read_text()
    assert upper == "LITERAL\nFROM HTTP\nFROM FILE\n"
    assert (site.store.root / "put" / "upper.txt").read_text() == upper
    assert (site.store.root / "g" / "one.csv").read_text() == "1\n"
    assert not (site.store.root / "g" / "x").exists()  # '*' does not cross directories
    assert (site.store.root / "d" / "sub" / "b.txt").read_text() == "BB"
    log = done.logs[0]
    assert [e.exit_code for e in log.logs] == [0, 0, 0]
    # the env value's declared path was rewritten to the task's host directory
    assert log.logs[0].stdout.startswith("hello /") and "/working/data" in log.logs[0].stdout
    assert log.logs[0].stderr == "to-stderr\n" and log.logs[1].stdout == upper
    sizes = {(o.url, int(o.size_bytes)) for o in log.outputs}  # a string on the wire (int64)
    assert (site.store.url("put/upper.txt"), len(upper)) in sizes
    assert (site.store.url("g/one.csv"), 2) in sizes
    assert (site.store.url("d/a.txt"), 1) in sizes and len(log.outputs) == 5
    assert any("alpine not used" in line for line in log.system_logs)
    assert log.start_time and log.end_time and done.creation_time


def test_executor_error_and_ignore_error(site: Site) -> None:
    task = tes.Task(
        executors=[
            tes.Executor(image="x", command=["sh", "-c", "exit 3"], ignore_error=True),
            tes.Executor(image="x", command=["sh", "-c", "echo failing; exit 5"]),
            tes.Executor(image="x", command=["touch", "/never"]),
        ],
        outputs=[tes.Output(path="/never", url=site.store.url("never"))],
    )
    done = site.wait(site.client().create_task(task))
    assert done.state == "EXECUTOR_ERROR"
    assert [e.exit_code for e in done.logs[0].logs] == [3, 5]
    assert done.logs[0].logs[1].stdout == "failing\n"
    assert not (site.store.root / "never").exists() and done.logs[0].outputs == []


def test_links_planted_in_the_job_directory_are_not_followed(site: Site) -> None:
    """A task links the server's record of its outputs to a file outside the job: the link is
    not followed (the task ends SYSTEM_ERROR saying so) and the file is untouched."""
    victim = site.allowed / "victim.txt"
    victim.write_text("keep")
    plant = (
        f"ln -s {victim} ../tes_outputs.json; ln -s {victim} ../tes_outputs.json.tmp; echo x > /o"
    )
    done = site.wait(
        site.client().create_task(
            tes.Task(
                executors=[tes.Executor(image="x", command=["sh", "-c", plant])],
                outputs=[tes.Output(path="/o", url=site.store.url("planted"))],
            )
        )
    )
    assert victim.read_text() == "keep"
    assert done.state == "SYSTEM_ERROR"
    assert any("symbolic link" in line for line in done.logs[0].system_logs)


def test_system_errors_carry_their_reason(site: Site) -> None:
    client = site.client()
    missing = client.create_task(
        tes.Task(
            inputs=[tes.Input(path="/in/x", url=site.store.url("no-such-file"))],
            executors=[tes.Executor(image="x", command=["true"])],
        )
    )
    outside = client.create_task(
        tes.Task(
            inputs=[tes.Input(path="/in/x", url="file:///etc/hostname")],
            executors=[tes.Executor(image="x", command=["true"])],
        )
    )
    not_made = client.create_task(
        tes.Task(
            executors=[tes.Executor(image="x", command=["true"])],
            outputs=[tes.Output(path="/out/absent", url=site.store.url("absent"))],
        )
    )
    link = client.create_task(
        tes.Task(
            executors=[tes.Executor(image="x", command=["ln", "-s", "/etc/hostname", "/out/l"])],
            outputs=[tes.Output(path="/out/l", url=site.store.url("leaked"))],
        )
    )
    for task_id, why in (
        (link, "leads outside the job directory"),
        (missing, "404"),
        (outside, "outside the allowed directories"),
        (not_made, "was not produced"),
    ):
        done = site.wait(task_id)
        assert done.state == "SYSTEM_ERROR", done
        assert any(why in line for line in done.logs[0].system_logs), done.logs[0].system_logs
    assert not (site.store.root / "leaked").exists()


def test_initializing_while_inputs_are_fetched(site: Site) -> None:
    """The task is INITIALIZING exactly while the server fetches its inputs."""
    (site.store.root / "slow.txt").write_text("slow\n")
    gate = site.store.hold("slow.txt")
    client = site.client()
    task_id = client.create_task(
        tes.Task(
            inputs=[tes.Input(path="/in/slow.txt", url=site.store.url("slow.txt"))],
            executors=[tes.Executor(image="x", command=["cat", "/in/slow.txt"])],
        )
    )
    try:
        assert client.get_task(task_id).state == "INITIALIZING"
    finally:
        gate.set()
    done = site.wait(task_id)
    assert done.state == "COMPLETE" and done.logs[0].logs[0].stdout == "slow\n"


def test_queued_while_the_manager_is_full(site: Site) -> None:
    """``single`` runs one job at a time: a second task waits QUEUED behind a running one."""
    gate = site.allowed / "queue-gate"
    client = site.client("/managers/single")
    blocker = client.create_task(
        tes.Task(
            name="blocker",
            executors=[
                tes.Executor(
                    image="x", command=["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.1; done"]
                )
            ],
        )
    )
    waiting = client.create_task(tes.Task(executors=[tes.Executor(image="x", command=["true"])]))
    try:
        deadline = time.monotonic() + 30
        while client.get_task(blocker).state != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get_task(waiting).state == "QUEUED"
    finally:
        gate.write_text("")
    assert site.wait(waiting, prefix="/managers/single").state == "COMPLETE"
    assert site.wait(blocker, prefix="/managers/single").state == "COMPLETE"


def test_cancel_running_task(site: Site) -> None:
    client = site.client()
    task_id = client.create_task(
        tes.Task(executors=[tes.Executor(image="x", command=["sleep", "60"])])
    )
    deadline = time.monotonic() + 30
    while client.get_task(task_id).state != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    client.cancel_task(task_id)
    assert client.get_task(task_id).state == "CANCELED"
    # a client that percent-encodes the colon reaches the same route (PATH_INFO is decoded)
    assert site.raw("POST", f"/ga4gh/tes/v1/tasks/{task_id}%3Acancel").json() == {}


def test_list_views_filters_and_pages(site: Site) -> None:
    client = site.client("/managers/other")
    ids = []
    for index in range(5):
        task = tes.Task(
            name=f"batch-{index}",
            tags={"group": "even" if index % 2 == 0 else "odd", "n": str(index)},
            inputs=[tes.Input(path="/in/c", content="secret content")],
            executors=[tes.Executor(image="x", command=["true"])],
        )
        ids.append(client.create_task(task))
    for task_id in ids:
        site.wait(task_id, prefix="/managers/other")
    path = "/managers/other/ga4gh/tes/v1/tasks"
    minimal = site.raw("GET", path).json()["tasks"]
    assert [t["id"] for t in minimal] == ids[::-1] and set(minimal[0]) == {"id", "state"}
    basic = site.raw("GET", path, params={"view": "BASIC"}).json()["tasks"][0]
    assert "content" not in basic["inputs"][0] and "system_logs" not in basic["logs"][0]
    full = site.raw("GET", f"{path}/{ids[0]}", params={"view": "FULL"}).json()
    assert full["inputs"][0]["content"] == "secret content" and "system_logs" in full["logs"][0]

    def listed(**params: Any) -> list[str]:
        return [t["id"] for t in site.raw("GET", path, params=params).json()["tasks"]]

    assert listed(name_prefix="batch-3") == [ids[3]]
    assert listed(tag_key="group", tag_value="odd") == [ids[3], ids[1]]
    assert listed(tag_key=["group", "n"], tag_value=["even", "4"]) == [ids[4]]
    assert len(listed(tag_key="group")) == 5 and listed(tag_key="nope") == []
    assert len(listed(state="COMPLETE")) == 5 and listed(state="RUNNING") == []
    pages, token = [], None
    while True:
        answer = client.list_tasks(page_size=2, page_token=token)
        pages.append([t.id for t in answer.tasks])
        token = answer.next_page_token
        if not token:
            break
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    # the default manager's listing holds none of them
    assert not set(ids) & {t.id for t in site.client().list_tasks().tasks or []}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "at least one executor"),
        ({"executors": [{"image": "x", "command": "ls"}]}, "command must be a"),
        ({"executors": [{"image": "x", "command": ["ls"], "workdir": "rel"}]}, "absolute"),
        (
            {
                "executors": [{"image": "x", "command": ["ls"]}],
                "inputs": [{"path": "/a/../../etc", "content": "x"}],
            },
            "..",
        ),
        (
            {
                "executors": [{"image": "x", "command": ["ls"]}],
                "inputs": [{"path": "/a", "url": "gs://bucket/a"}],
            },
            "unsupported storage scheme",
        ),
        (
            {
                "executors": [{"image": "x", "command": ["ls"]}],
                "outputs": [{"path": "/o/*.txt", "url": "file:///x"}],
            },
            "path_prefix",
        ),
        (
            {
                "executors": [{"image": "x", "command": ["ls"]}],
                "resources": {
                    "backend_parameters": {"VmSize": "big"},
                    "backend_parameters_strict": True,
                },
            },
            "VmSize",
        ),
    ],
)
def test_bad_tasks_are_400(site: Site, body: dict[str, Any], needle: str) -> None:
    response = site.raw("POST", "/ga4gh/tes/v1/tasks", json=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert needle in answer["message"] and answer["code"] == 400 and answer["error"]


def test_bad_requests_unknown_ids_and_tokens(site: Site) -> None:
    tasks = "/ga4gh/tes/v1/tasks"
    assert site.raw("POST", tasks, data=b"{not json").status_code == 400
    assert site.raw("GET", tasks, params={"view": "ALL"}).status_code == 400
    assert site.raw("GET", tasks, params={"state": "DONE"}).status_code == 400
    assert site.raw("GET", tasks, params={"page_size": "0"}).status_code == 400
    assert site.raw("GET", tasks, params={"page_token": "x"}).status_code == 400
    for path in (f"{tasks}/0123abcd", f"{tasks}/..%2Fetc"):
        missing = site.raw("GET", path)
        assert missing.status_code == 404 and missing.json()["code"] == 404
    assert site.raw("POST", f"{tasks}/0123abcd:cancel").status_code == 404
    assert site.raw("GET", tasks, token=None).status_code == 403
    assert site.raw("GET", tasks, token="wrong").status_code == 403
    assert site.raw("GET", tasks, token=None, params={"private_token": TOKEN}).status_code == 200
    with pytest.raises(requests.HTTPError):
        site.client().get_task("0123abcd")


def test_task_survives_kill_9(site: Site) -> None:
    """``kill -9`` of the server: a running task runs on and completes after the restart, and a
    task caught fetching its inputs fetches them again (staging is idempotent)."""
    gate = site.allowed / "gate"
    (site.store.root / "held.txt").write_text("held\n")
    held = site.store.hold("held.txt")
    client = site.client()
    running = client.create_task(
        tes.Task(
            executors=[
                tes.Executor(
                    image="x",
                    command=[
                        "sh",
                        "-c",
                        f"while [ ! -e {gate} ]; do sleep 0.1; done; echo out > /o",
                    ],
                )
            ],
            outputs=[tes.Output(path="/o", url=site.store.url("after-restart"))],
        )
    )
    staging = client.create_task(
        tes.Task(
            inputs=[tes.Input(path="/in/held.txt", url=site.store.url("held.txt"))],
            executors=[tes.Executor(image="x", command=["cat", "/in/held.txt"])],
        )
    )
    deadline = time.monotonic() + 30
    while client.get_task(running).state != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.get_task(staging).state == "INITIALIZING"
    site.server.kill9()
    gate.write_text("")
    site.server.start()
    held.set()
    done = site.wait(running)
    assert done.state == "COMPLETE", site.server.log()
    assert (site.store.root / "after-restart").read_text() == "out\n"
    assert done.logs[0].logs[0].exit_code == 0
    fetched = site.wait(staging)
    assert fetched.state == "COMPLETE" and fetched.logs[0].logs[0].stdout == "held\n"


def test_answers_were_checked_against_the_openapi_document(site: Site) -> None:
    """The tests above went through the schema check (it is not a no-op)."""
    assert site.schema.checked > 40
