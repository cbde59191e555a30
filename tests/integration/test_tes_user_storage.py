"""The operator's opt-in for service users' ``file://`` and ``s3://``: real server, py-tes.

The server opens ``<roots>/{user}`` (each user their own directory) and ``s3://shared/{user}``;
``s3`` is moto's server, an EMULATOR of the S3 API (no AWS endpoint is reachable here), reached
the way a site reaches an S3-compatible store: ``AWS_ENDPOINT_URL_S3`` and credentials in the
environment. A name outside a user's place (``..``, another user's, elsewhere) is refused when
the task arrives (403 naming the setting); a link leading out of the root is refused when the
file is opened (the task ends ``SYSTEM_ERROR`` saying so, nothing read or written outside).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import tes

from tests.integration.moto_s3 import AWS, credentials, moto_s3
from tests.integration.server import LwrServer, free_port, write_server_ini
from tests.integration.tes_legacy_support import wait_task
from tests.integration.tes_support import lwr_users

pytestmark = pytest.mark.integration

ADMIN = "admin-token"
PLANS = "free: {max_input_size: 1 KB, max_running_jobs: 4}\n"
PREFIX = "/ga4gh/tes/v1"


@dataclass
class Site:
    server: LwrServer
    roots: Path
    s3: Any
    tokens: dict[str, str]

    def client(self, who: str) -> tes.HTTPClient:
        return tes.HTTPClient(self.server.url.rstrip("/"), token=self.tokens[who], timeout=30)

    def post(self, who: str, body: dict[str, Any]) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        url = self.server.url.rstrip("/") + PREFIX + "/tasks"
        return requests.post(url, json=body, headers=headers, timeout=30)

    def run(self, who: str, inputs: list[Any], outputs: list[Any], command: str) -> Any:
        executors = [tes.Executor(image="x", command=["sh", "-c", command])]
        made = tes.Task(inputs=inputs, outputs=outputs, executors=executors, volumes=["/out"])
        return wait_task(self.client(who), self.client(who).create_task(made))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("tes_user_storage")
    roots = base / "roots"
    for user in ("alice", "bob"):
        (roots / user).mkdir(parents=True)
    (base / "outside").mkdir()
    with moto_s3(base) as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, **credentials())
        for bucket in ("shared", "other"):
            s3.create_bucket(Bucket=bucket)
        directory = base / "server"
        directory.mkdir()
        (directory / "plans.yml").write_text(PLANS)
        options = {
            "private_token": ADMIN,
            "plans": "plans.yml",
            "tes_user_file_roots": f"{roots}/{{user}}",
            "tes_user_s3_buckets": "shared/{user}",
        }
        port = free_port()
        write_server_ini(directory, port, options)
        tokens = {"admin": ADMIN}
        for name in ("alice", "bob"):
            tokens[name] = lwr_users(directory, "add", name)["token"]
        env = {**os.environ, **AWS, "AWS_ENDPOINT_URL_S3": endpoint}
        server = LwrServer(directory, port, env=env).start()
        try:
            yield Site(server, roots, s3, tokens)
        finally:
            server.stop()


def test_a_user_reads_and_writes_in_their_root(site: Site) -> None:
    mine = site.roots / "alice"
    (mine / "in.txt").write_text("alice's data\n")
    (mine / "alias").symlink_to("in.txt")  # a link that stays inside is followed
    done = site.run(
        "alice",
        [
            tes.Input(path="/in/a", url=f"file://{mine}/in.txt"),
            tes.Input(path="/in/b", url=f"file://{mine}/alias"),
        ],
        [tes.Output(path="/out/r.txt", url=f"file://{mine}/results/r.txt")],
        "cat /in/a /in/b > /out/r.txt",
    )
    assert done.state == "COMPLETE", done
    assert (mine / "results" / "r.txt").read_text() == "alice's data\n" * 2


@pytest.mark.parametrize(
    "url",
    ["{roots}/alice/../bob/secret", "{roots}/bob/secret", "/etc/hostname", "{roots}/alice"],
)
def test_names_outside_the_users_root_are_refused(site: Site, url: str) -> None:
    (site.roots / "bob" / "secret").write_text("bob's\n")
    url = url.format(roots=site.roots)
    for body in (
        {"inputs": [{"path": "/in/x", "url": f"file://{url}"}]},
        {"outputs": [{"path": "/out/x", "url": url}]},
    ):
        answer = site.post("alice", {"executors": [{"image": "x", "command": ["true"]}], **body})
        assert answer.status_code == 403, answer.text
        assert answer.json()["setting"] == "tes_user_file_roots", answer.json()
        assert "outside the directories" in answer.json()["message"]


def test_links_leading_out_of_the_root_are_not_followed(site: Site) -> None:
    mine, outside = site.roots / "alice", site.roots.parent / "outside"
    (site.roots / "bob" / "secret").write_text("bob's\n")
    (mine / "to-bob").symlink_to(site.roots / "bob")
    (mine / "to-secret").symlink_to("../bob/secret")
    (mine / "to-outside").symlink_to(outside)
    for name in ("to-bob/secret", "to-secret"):
        done = site.run(
            "alice", [tes.Input(path="/in/x", url=f"file://{mine}/{name}")], [], "cat /in/x"
        )
        assert done.state == "SYSTEM_ERROR", done
        said = "\n".join(done.logs[0].system_logs)
        assert "leads out of" in said and "tes_user_file_roots" in said, said
    staged = (site.server.directory / "files" / "staging" / ".users" / "alice").rglob("*")
    assert not [p for p in staged if p.is_file() and p.read_bytes() == b"bob's\n"]
    done = site.run(
        "alice",
        [],
        [tes.Output(path="/out/o", url=f"file://{mine}/to-outside/o")],
        "echo x > /out/o",
    )
    assert done.state == "SYSTEM_ERROR" and "leads out of" in "\n".join(done.logs[0].system_logs)
    assert list(outside.iterdir()) == []


def test_a_file_input_is_held_to_the_plan(site: Site) -> None:
    mine = site.roots / "alice"
    (mine / "big.bin").write_bytes(b"b" * 1200)  # free: 1 KB a file
    done = site.run("alice", [tes.Input(path="/in/big", url=f"file://{mine}/big.bin")], [], "true")
    assert done.state == "SYSTEM_ERROR" and "max_input_size" in "\n".join(done.logs[0].system_logs)


def test_s3_places_of_the_user(site: Site) -> None:
    site.s3.put_object(Bucket="shared", Key="alice/in.txt", Body=b"from s3\n")
    site.s3.put_object(Bucket="shared", Key="alice/tree/a", Body=b"a")
    done = site.run(
        "alice",
        [
            tes.Input(path="/in/x", url="s3://shared/alice/in.txt"),
            tes.Input(path="/in/tree", url="s3://shared/alice/tree", type="DIRECTORY"),
        ],
        [tes.Output(path="/out/o", url="s3://shared/alice/out/o")],
        "cat /in/x /in/tree/a > /out/o",
    )
    assert done.state == "COMPLETE", done
    body = site.s3.get_object(Bucket="shared", Key="alice/out/o")["Body"].read()
    assert body == b"from s3\na"
    for url in ("s3://shared/bob/x", "s3://shared/alice2/x", "s3://other/alice/x",
                "s3://shared/alice/../bob/x", "s3://shared"):  # fmt: skip
        answer = site.post(
            "alice",
            {
                "executors": [{"image": "x", "command": ["true"]}],
                "inputs": [{"path": "/in/x", "url": url}],
            },
        )
        assert answer.status_code == 403, (url, answer.text)
        assert answer.json()["setting"] == "tes_user_s3_buckets"


def test_a_root_holding_the_servers_files_refuses_to_start(tmp_path: Path) -> None:
    port = free_port()
    write_server_ini(tmp_path, port, {"tes_user_file_roots": f"{tmp_path}/files"})
    with pytest.raises(RuntimeError, match="tes_user_file_roots"):
        LwrServer(tmp_path, port).start()


def test_an_s3_input_over_the_plan_is_not_fetched(site: Site) -> None:
    site.s3.put_object(Bucket="shared", Key="alice/big.bin", Body=b"b" * 1200)  # free: 1 KB
    done = site.run(
        "alice", [tes.Input(path="/in/big", url="s3://shared/alice/big.bin")], [], "true"
    )
    assert done.state == "SYSTEM_ERROR" and "max_input_size" in "\n".join(done.logs[0].system_logs)
    working = site.server.directory / "files" / "staging" / ".users" / "alice" / done.id / "working"
    assert not [p for p in working.rglob("*") if p.is_file()]


def test_a_directory_from_the_users_root(site: Site) -> None:
    tree = site.roots / "alice" / "tree"
    (tree / "deep").mkdir(parents=True)
    (tree / "a").write_text("a")
    (tree / "deep" / "b").write_text("bb")
    (tree / "deep" / "near").symlink_to("../a")  # inside the root: followed
    listing = "cd /in/tree && find . -type f | sort && cat a deep/b deep/near"
    url = f"file://{tree}"
    done = site.run("alice", [tes.Input(path="/in/tree", url=url, type="DIRECTORY")], [], listing)
    assert done.state == "COMPLETE", done
    assert done.logs[0].logs[0].stdout == "./a\n./deep/b\n./deep/near\nabba"

    (site.roots / "bob" / "secret").write_text("bob's\n")
    (tree / "deep" / "far").symlink_to(site.roots / "bob" / "secret")
    done = site.run("alice", [tes.Input(path="/in/tree", url=url, type="DIRECTORY")], [], "true")
    assert done.state == "SYSTEM_ERROR" and "leads out of" in "\n".join(done.logs[0].system_logs)
    (site.roots / "alice" / "to-bob-dir").symlink_to(site.roots / "bob")
    url = f"file://{site.roots}/alice/to-bob-dir"
    done = site.run("alice", [tes.Input(path="/in/tree", url=url, type="DIRECTORY")], [], "true")
    assert done.state == "SYSTEM_ERROR" and "leads out of" in "\n".join(done.logs[0].system_logs)
