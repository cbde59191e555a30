"""TES tasks of service users, on SQLite and on PostgreSQL: a real server, ``py-tes`` as the client.

A service user's task is one of their jobs: it lives in their namespace, is listed by ``GET
/jobs`` and the dashboard, waits behind their plan's running limit, is held to their plan's
input limits (413 up front for ``content``, a ``SYSTEM_ERROR`` naming the limit for ``http``
inputs found too big while staged in), is archived after their plan's retention time and
notifies its owner. Another user's task answers exactly as an unknown one. Every 2xx TES answer
is validated against the GA4GH TES 1.1.0 document (:class:`TesSchema`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import tes

from tests.integration.postgres import scratch_database
from tests.integration.server import LwrServer, free_port, write_server_ini
from tests.integration.tes_support import REPO, HttpStore, TesSchema, lwr_users
from tests.notify_servers import WebhookReceiver

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

ADMIN = "admin-token"
PLANS = """\
free: {max_input_size: 1 KB, max_total_input: 1500 B, max_running_jobs: 1, retention_minutes: 0.02}
premium: {max_running_jobs: 4, retention_minutes: forever}
"""
MANAGERS = "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 4\n"
PREFIX = "/ga4gh/tes/v1"
UNFINISHED = ("QUEUED", "INITIALIZING", "RUNNING")


@dataclass
class Site:
    server: LwrServer
    store: HttpStore
    hooks: WebhookReceiver
    tokens: dict[str, str]
    schema: TesSchema

    def client(self, who: str) -> tes.HTTPClient:
        return tes.HTTPClient(self.server.url.rstrip("/"), token=self.tokens[who], timeout=30)

    def raw(self, who: str, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        url = self.server.url.rstrip("/") + path
        response = requests.request(method, url, headers=headers, timeout=30, **kw)
        if path.startswith(PREFIX):
            self.schema.check(response)
        elif path == "/jobs":
            _check_lwr_answer(response)
        return response

    def jobs(self, who: str, **params: str) -> list[dict[str, Any]]:
        answer = self.raw(who, "GET", "/jobs", params={"limit": "500", **params})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["jobs"])

    def wait(self, who: str, task_id: str, states: tuple[str, ...] = UNFINISHED) -> tes.Task:
        """Poll until the task leaves ``states`` (a generous bound, not a timing assertion)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            task = self.client(who).get_task(task_id, view="FULL")
            if task.state not in states:
                return task
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} still {task.state}\n{self.server.log()}")

    def staging(self) -> Path:
        return self.server.directory / "files" / "staging"


def _check_lwr_answer(response: requests.Response) -> None:
    """Validate a ``GET /jobs`` answer against LWR's own OpenAPI description (its ``kind``)."""
    from openapi_core import OpenAPI
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    global _LWR_API
    if _LWR_API is None:
        _LWR_API = OpenAPI.from_file_path(str(REPO / "lwr" / "web" / "openapi.yaml"))
    request = response.request
    request.url = re.sub(r"^https?://[^/]+", "http://lwr.test", request.url or "")
    _LWR_API.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))


_LWR_API: Any = None


def until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"never: {what}")


def task(*commands: str, **fields: Any) -> tes.Task:
    executors = [tes.Executor(image="alpine", command=["sh", "-c", c]) for c in commands]
    return tes.Task(executors=executors, **fields)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """One server per database; alice and bob on plan free, pat on premium; alice's webhook."""
    base = tmp_path_factory.mktemp(f"tes_users_{request.param}")
    database = scratch_database("lwr_tes_users") if request.param == "postgresql" else None
    (base / "http").mkdir()
    with (
        database or nullcontext(None) as url,
        HttpStore(base / "http") as store,
        WebhookReceiver({}) as hooks,
    ):
        directory = base / "server"
        directory.mkdir()
        (directory / "plans.yml").write_text(PLANS)
        options = {
            "private_token": ADMIN,
            "plans": "plans.yml",
            "retention_scan_interval": "0.3",
            "notify_poll_interval": "0.2",
            "notify_retry_delay": "0.2",
            # the tests' HTTP store and webhook receiver listen on loopback: allowed (lwr.egress)
            "tes_user_allowed_networks": "127.0.0.1/32",
            "notify_webhook_allowed_networks": "127.0.0.1/32",
        }
        if url:
            options["database_url"] = url
        port = free_port()
        write_server_ini(directory, port, options)
        (directory / "job_managers.ini").write_text(MANAGERS)
        tokens = {"admin": ADMIN}
        for name, plan in (("alice", "free"), ("bob", "free"), ("pat", "premium")):
            tokens[name] = lwr_users(directory, "add", name, "--plan", plan)["token"]
        server = LwrServer(directory, port).start()
        schema = TesSchema()
        site = Site(server, store, hooks, tokens, schema)
        original = {name: getattr(tes.client.requests, name) for name in ("get", "post")}
        for name in original:
            setattr(tes.client.requests, name, _checked(original[name], schema))
        try:
            answer = site.raw(
                "alice", "PUT", "/profile/notifications", params={"webhook_url": hooks.url("alice")}
            )
            assert answer.status_code == 200, answer.text
            hooks.secrets["alice"] = answer.json()["webhook_secret"]
            yield site
        finally:
            for name, function in original.items():
                setattr(tes.client.requests, name, function)
            server.stop()
            schema.close()


def _checked(call: Any, schema: TesSchema) -> Any:
    def checked(*args: Any, **kwargs: Any) -> Any:
        response = call(*args, **kwargs)
        schema.check(response)
        return response

    return checked


def test_a_users_task_is_one_of_their_jobs(site: Site) -> None:
    """Namespace, listing (with its kind), dashboard, notification and retention."""
    task_id = site.client("alice").create_task(
        task(
            "cat /data/in.txt > /out/copy.txt",
            name="copy",
            volumes=["/out"],
            inputs=[tes.Input(path="/data/in.txt", content="alice's line\n")],
        )
    )
    done = site.wait("alice", task_id)
    assert done.state == "COMPLETE", (done, site.server.log())
    assert (site.staging() / ".users" / "alice" / task_id / "metadata").is_dir()
    assert not (site.staging() / task_id).exists()
    listed = {job["id"]: job for job in site.jobs("alice")}
    assert listed[task_id]["kind"] == "tes" and listed[task_id]["state"] == "complete"
    assert listed[task_id]["inputs"] == [
        {"name": "/data/in.txt", "type": "input", "size": len("alice's line\n")}
    ]
    assert task_id not in {job["id"] for job in site.jobs("bob")}
    as_admin = {job["id"]: job for job in site.jobs("admin", owner="alice")}
    assert as_admin[task_id]["owner"] == "alice" and as_admin[task_id]["kind"] == "tes"

    hook = until(
        lambda: [h for h in site.hooks.accepted if h["body"]["id"] == task_id],
        "alice's webhook for her task",
    )
    assert hook[0]["body"]["state"] == "complete" and hook[0]["body"]["owner"] == "alice"

    archived = until(
        lambda: [j for j in site.jobs("alice") if j["id"] == task_id and j["archived"]],
        "her task's results archived after plan free's retention time",
    )
    assert archived[0]["results_available"] is False
    out = site.staging() / ".users" / "alice" / task_id / "working" / "out"
    until(lambda: not out.exists(), "the archived results purged from the task's directory")
    after = site.client("alice").get_task(task_id, view="FULL")  # still answers, with its logs
    assert after.state == "COMPLETE" and after.logs[0].logs[0].exit_code == 0

    pages = _dashboard(site, "alice", "/ui/jobs", f"/ui/jobs/{task_id}")
    assert task_id in pages[0] and "TES task" in pages[0]
    assert "TES task (GA4GH TES API)" in pages[1] and "complete" in pages[1]


def _dashboard(site: Site, who: str, *paths: str) -> list[str]:
    """The dashboard pages at ``paths``, signed in with ``who``'s token through the form."""
    session = requests.Session()
    base = site.server.url.rstrip("/")
    form = session.get(base + "/ui/sign-in", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', form.text)
    assert csrf, form.text
    signed = session.post(
        base + "/ui/sign-in",
        data={"csrf_token": csrf[1], "next": "/ui/jobs", "token": site.tokens[who]},
        timeout=30,
    )
    assert signed.status_code == 200, signed.text
    pages = []
    for path in paths:
        page = session.get(base + path, timeout=30)
        assert page.status_code == 200, page.text
        pages.append(page.text)
    return pages


def test_users_cannot_reach_each_others_tasks(site: Site) -> None:
    """bob (and the admin token) get, cancel and list alice's task as if it did not exist."""
    hold = site.server.directory / "hold-isolation"
    mine = site.client("alice").create_task(
        task(f"while [ ! -e {hold} ]; do sleep 0.05; done", name="iso")
    )
    theirs = site.client("bob").create_task(task("true", name="iso"))
    unknown = "0" * 32
    for who in ("bob", "admin"):
        for method, suffix in (("GET", ""), ("POST", ":cancel")):
            seen = site.raw(who, method, f"{PREFIX}/tasks/{mine}{suffix}")
            absent = site.raw(who, method, f"{PREFIX}/tasks/{unknown}{suffix}")
            assert seen.status_code == absent.status_code == 404
            assert seen.json() == json.loads(absent.text.replace(unknown, mine))
    assert mine not in {t.id for t in site.client("bob").list_tasks(view="MINIMAL").tasks}
    assert mine not in {t.id for t in site.client("admin").list_tasks(view="MINIMAL").tasks}
    assert site.wait("alice", mine, ("QUEUED", "INITIALIZING")).state == "RUNNING"  # not cancelled
    hold.touch()
    assert site.wait("alice", mine).state == "COMPLETE"
    assert site.wait("bob", theirs).state == "COMPLETE"

    made = [site.client("alice").create_task(task("true", name=f"page{i}")) for i in range(3)]
    first = site.client("alice").list_tasks(view="MINIMAL", page_size=2)
    rest = site.client("alice").list_tasks(
        view="MINIMAL", page_size=2, page_token=first.next_page_token
    )
    assert [t.id for t in first.tasks] == made[:0:-1] and first.next_page_token
    alice_ids = {
        t.id for t in site.client("alice").list_tasks(view="MINIMAL", page_size=2048).tasks
    }
    assert rest.tasks[0].id == made[0] and theirs not in alice_ids and mine in alice_ids
    for task_id in made:
        site.wait("alice", task_id)


def test_a_plans_running_limit_queues_tasks(site: Site) -> None:
    """alice (free: one running job) gets a second task queued while other users' pass it."""
    hold = site.server.directory / "hold-limit"
    wait_for_hold = f"while [ ! -e {hold} ]; do sleep 0.05; done"
    first = site.client("alice").create_task(task(wait_for_hold, name="first"))
    assert site.wait("alice", first, ("QUEUED", "INITIALIZING")).state == "RUNNING"
    second = site.client("alice").create_task(task(wait_for_hold, name="second"))
    passing = site.client("pat").create_task(task("true", name="passes"))
    assert site.wait("pat", passing).state == "COMPLETE"  # set up after alice's second
    assert site.client("alice").get_task(second).state == "QUEUED"
    states = {job["id"]: job["state"] for job in site.jobs("alice", state="queued,running")}
    assert states[first] == "running" and states[second] == "queued"
    hold.touch()
    assert site.wait("alice", second).state == "COMPLETE"
    assert site.client("alice").get_task(first).state == "COMPLETE"
    page = _dashboard(site, "pat", f"/ui/jobs/{passing}")[0]  # premium: results kept
    assert f"/ga4gh/tes/v1/tasks/{passing}?view=FULL" in page


def test_content_over_the_plan_is_refused_up_front(site: Site) -> None:
    before = len(site.jobs("alice"))
    too_big = {"executors": [{"image": "x", "command": ["true"]}],
               "inputs": [{"path": "/data/a", "content": "x" * 1100}]}  # fmt: skip
    answer = site.raw("alice", "POST", f"{PREFIX}/tasks", json=too_big)
    assert answer.status_code == 413, answer.text
    body = answer.json()
    assert body["limit"] == "max_input_size" and body["plan"] == "free"
    assert body["allowed_by"] == "premium" and body["code"] == 413
    assert "plan 'free'" in body["message"] and "max_input_size" in body["message"]
    together = dict(too_big, inputs=[{"path": f"/data/{n}", "content": "x" * 800} for n in "ab"])
    answer = site.raw("alice", "POST", f"{PREFIX}/tasks", json=together)
    assert answer.status_code == 413 and answer.json()["limit"] == "max_total_input"
    assert len(site.jobs("alice")) == before  # nothing was created
    premium = site.raw("pat", "POST", f"{PREFIX}/tasks", json=together)
    assert premium.status_code == 200, premium.text
    assert site.wait("pat", premium.json()["id"]).state == "COMPLETE"


def test_http_inputs_over_the_plan_fail_the_task(site: Site) -> None:
    (site.store.root / "big.bin").write_bytes(b"b" * 1200)
    (site.store.root / "half.bin").write_bytes(b"h" * 800)
    (site.store.root / "small.bin").write_bytes(b"s" * 500)

    def fetching(*names: str) -> tes.Task:
        inputs = [
            tes.Input(path=f"/in/{i}/{n}", url=site.store.url(n)) for i, n in enumerate(names)
        ]
        return task("cat /in/*/* | wc -c", inputs=inputs)

    big = site.client("alice").create_task(fetching("big.bin"))
    both = site.client("alice").create_task(fetching("half.bin", "half.bin"))
    small = site.client("alice").create_task(fetching("small.bin"))
    premium = site.client("pat").create_task(fetching("big.bin", "half.bin"))
    for task_id, limit in ((big, "max_input_size"), (both, "max_total_input")):
        done = site.wait("alice", task_id)
        assert done.state == "SYSTEM_ERROR", done
        said = "\n".join(done.logs[0].system_logs)
        assert limit in said and "plan 'free'" in said and "plan 'premium' allows it" in said
        working = site.staging() / ".users" / "alice" / task_id / "working"
        leftovers = [p.name for p in working.rglob("*") if p.is_file()]
        assert not [n for n in leftovers if n.startswith(".lwr-download") or n == "big.bin"]
    assert site.wait("alice", small).state == "COMPLETE"
    assert site.wait("pat", premium).state == "COMPLETE"


def test_server_storage_is_the_admin_tokens(site: Site) -> None:
    """file:// reads and writes with the server's rights: refused to users, 403 naming why."""
    for inputs, outputs in (
        ([{"path": "/d/x", "url": "file:///etc/hostname"}], []),
        ([], [{"path": "/d/x", "url": "/tmp/lwr-out"}]),
    ):
        body = {"executors": [{"image": "x", "command": ["true"]}], "inputs": inputs,
                "outputs": outputs}  # fmt: skip
        answer = site.raw("alice", "POST", f"{PREFIX}/tasks", json=body)
        assert answer.status_code == 403, answer.text
        assert answer.json()["setting"] == "service users' storage"
        assert "admin token" in answer.json()["message"]


def test_the_admin_tokens_tasks_are_as_before(site: Site) -> None:
    task_id = site.client("admin").create_task(task("true", name="admin's"))
    assert site.wait("admin", task_id).state == "COMPLETE"
    assert (site.staging() / task_id / "metadata").is_dir()  # Pulsar's layout, no namespace
    own = {job["id"]: job for job in site.jobs("admin", owner="-")}
    assert own[task_id]["kind"] == "tes" and own[task_id]["owner"] is None
    for who in ("alice", "bob"):
        assert site.raw(who, "GET", f"{PREFIX}/tasks/{task_id}").status_code == 404
