"""TES tasks of service users cannot make the server reach its own network (SSRF): real servers.

A service user's ``http(s)`` input is fetched, and output PUT, by the server from inside its
network. An internal address literal (loopback, cloud metadata, ``[::1]``, ``2130706433``) is
refused with a 403 when the task is created; a name is judged by each transfer, which resolves it
once and connects to the address it judged, so ``localhost`` (a name the test's resolver answers
with 127.0.0.1, as a rebound name would) fails the task with the reason in its system logs and
no byte reaches the internal server. ``tes_user_allowed_networks`` opens a network; the admin
token's tasks are not held. ``py-tes`` is the client, as for any TES user.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import tes

from tests.integration.conftest import ServerFactory
from tests.integration.server import LwrServer
from tests.integration.tes_support import HttpStore, lwr_users
from tests.integration.test_tes_users import MANAGERS, task

pytestmark = pytest.mark.integration

ADMIN = "admin-token"
PREFIX = "/ga4gh/tes/v1"


def _server(factory: ServerFactory, **options: str) -> tuple[LwrServer, str]:
    """A server with one service user, alice (her token is returned)."""
    server = factory(
        app_options={"private_token": ADMIN, "plans": "plans.yml", **options},
        managers_ini=MANAGERS,
        start=False,
    )
    (server.directory / "plans.yml").write_text("free: {max_running_jobs: 4}\n")
    token = str(lwr_users(server.directory, "add", "alice", "--plan", "free")["token"])
    return server.start(), token


def _client(server: LwrServer, token: str) -> tes.HTTPClient:
    return tes.HTTPClient(server.url.rstrip("/"), token=token, timeout=30)


def _wait(client: tes.HTTPClient, task_id: str) -> tes.Task:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = client.get_task(task_id, view="FULL")
        if found.state not in ("QUEUED", "INITIALIZING", "RUNNING"):
            return found
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never finished")


def _post(server: LwrServer, token: str, body: dict[str, object]) -> requests.Response:
    return requests.post(
        f"{server.url.rstrip('/')}{PREFIX}/tasks",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _body(inputs: list[dict[str, str]], outputs: list[dict[str, str]]) -> dict[str, object]:
    executors = [{"image": "alpine", "command": ["sh", "-c", "echo hi > /out/x"]}]
    return {"executors": executors, "inputs": inputs, "outputs": outputs}


def test_internal_addresses_are_refused_to_a_users_task(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    (tmp_path / "store").mkdir()
    with HttpStore(tmp_path / "store") as store:
        (store.root / "secret.txt").write_text("internal\n")
        server, alice = _server(lwr_server_factory)
        port = store.server.server_port
        literals = [
            f"http://127.0.0.1:{port}/secret.txt",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/x",
            "http://2130706433/x",
            "https://10.1.2.3/x",
            "http://[::ffff:127.0.0.1]/x",
        ]
        for url in literals:
            for inputs, outputs in (([{"path": "/in/x", "url": url}], []),
                                    ([], [{"path": "/out/x", "url": url}])):  # fmt: skip
                answer = _post(server, alice, _body(inputs, outputs))
                assert answer.status_code == 403, (url, answer.text)
                said = answer.json()
                assert said["setting"] == "tes_user_allowed_networks", said
                assert "internal address" in said["message"], said

        # a name: accepted, then judged at the transfer, which fails the task and says why
        client = _client(server, alice)
        by_name = f"http://localhost:{port}/secret.txt"
        fetched = client.create_task(
            task("cat /in/secret.txt", inputs=[tes.Input(path="/in/secret.txt", url=by_name)])
        )
        done = _wait(client, fetched)
        assert done.state == "SYSTEM_ERROR", done
        said = "\n".join(done.logs[0].system_logs)
        assert "resolves to an internal address (loopback)" in said, said
        assert "tes_user_allowed_networks" in said, said

        sent = client.create_task(
            task(
                "echo out > /out/x",
                outputs=[tes.Output(path="/out/x", url=f"http://localhost:{port}/put.txt")],
            )
        )
        done = _wait(client, sent)
        assert done.state == "SYSTEM_ERROR", done
        assert "internal address" in "\n".join(done.logs[0].system_logs)
        assert store.puts == [] and not (store.root / "put.txt").exists()

        # the admin token's tasks keep reaching what the server reaches
        admin = _client(server, ADMIN)
        own = admin.create_task(
            task(
                "cat /in/secret.txt > /out/x",
                inputs=[tes.Input(path="/in/secret.txt", url=by_name)],
                outputs=[tes.Output(path="/out/x", url=f"http://127.0.0.1:{port}/admin.txt")],
            )
        )
        assert _wait(admin, own).state == "COMPLETE"
        assert (store.root / "admin.txt").read_text() == "internal\n"


def test_an_allowed_network_is_reached_end_to_end(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    (tmp_path / "store").mkdir()
    with HttpStore(tmp_path / "store") as store:
        (store.root / "data.txt").write_text("allowed\n")
        server, alice = _server(lwr_server_factory, tes_user_allowed_networks="127.0.0.1/32")
        port = store.server.server_port
        client = _client(server, alice)
        for host in ("127.0.0.1", "localhost"):  # a literal and a name that resolves into it
            task_id = client.create_task(
                task(
                    "cat /in/data.txt > /out/copy.txt",
                    inputs=[tes.Input(path="/in/data.txt", url=f"http://{host}:{port}/data.txt")],
                    outputs=[
                        tes.Output(path="/out/copy.txt", url=f"http://{host}:{port}/{host}.txt")
                    ],
                )
            )
            done = _wait(client, task_id)
            assert done.state == "COMPLETE", done
            assert (store.root / f"{host}.txt").read_text() == "allowed\n"
        # only the network named: the rest of loopback stays closed
        answer = _post(server, alice, _body([{"path": "/in/x", "url": "http://127.0.0.2/x"}], []))
        assert answer.status_code == 403, answer.text
