"""A real job against a real server: links it plants never lead the server out of its directory.

The job renames a directory of its own and links its name to a directory outside, and links its
stdout and stderr files to a file outside; then every file route refuses that name with a 4xx
JSON error, nothing outside changes, and the status carries a note instead of the file's content.
A second server with a file cache shows a job cannot change what the cache hands later jobs (run
as root in CI: the assertion is on the bytes, which root's ignoring of modes cannot fake).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.server import LwrServer

pytestmark = pytest.mark.integration

TOKEN = "tok-confine"


def call(server: LwrServer, method: str, route: str, body: bytes | None = None, **params: str):
    return server.request(method, route, {"private_token": TOKEN, **params}, body)


def run_job(server: LwrServer, job_id: str, command: str) -> dict[str, Any]:
    status, answer = call(server, "POST", f"jobs/{job_id}/submit", b"", command_line=command)
    assert status == 200, answer
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, answer = call(server, "GET", f"jobs/{job_id}/status")
        if status == 200 and answer["complete"] == "true":
            return answer  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {answer}")


def assert_refused(answer: tuple[int, Any]) -> None:
    status, body = answer
    assert 400 <= status < 500, answer
    assert isinstance(body, dict) and isinstance(body.get("error"), str), answer


def test_links_a_running_job_plants_are_never_followed(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory(app_options={"private_token": TOKEN})
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_text("outside the job")
    status, config = call(server, "POST", "jobs", b"", job_id="c1")
    assert status == 200, config
    job, working = Path(config["job_directory"]), Path(config["working_directory"])
    assert call(server, "POST", "jobs/c1/files", b"x", type="workdir", name="sub/own")[0] == 200
    final = run_job(
        server,
        "c1",
        f"mv {working}/sub {working}/sub.moved && ln -s {outside} {working}/sub"
        f" && ln -sf {secret} {job}/stdout && ln -sf {secret} {job}/stderr",
    )
    assert (working / "sub").is_symlink() and (job / "stdout").is_symlink()
    for stream in ("stdout", "stderr"):
        assert "outside the job" not in final[stream] and "symbolic link" in final[stream]
    before = sorted(p.name for p in outside.iterdir())
    assert_refused(call(server, "POST", "jobs/c1/files", b"y", type="workdir", name="sub/new"))
    assert_refused(call(server, "GET", "jobs/c1/files", type="output_workdir", name="sub/secret"))
    assert_refused(call(server, "GET", "jobs/c1/files/path", type="workdir", name="sub/new"))
    assert call(server, "DELETE", "jobs/c1")[0] == 200
    assert sorted(p.name for p in outside.iterdir()) == before
    assert secret.read_text() == "outside the job"


def test_a_job_cannot_change_the_file_cache(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory(app_options={"private_token": TOKEN, "file_cache_dir": "cache"})
    path = "/galaxy/files/dataset_9.dat"
    assert call(server, "PUT", "cache", b"", path=path) == (200, True)
    assert call(server, "POST", "cache", b"original bytes", path=path)[0] == 200
    token = call(server, "GET", "cache/status", path=path)[1]["token"]
    inputs = {}
    for job_id in ("k1", "k2"):
        status, config = call(server, "POST", "jobs", b"", job_id=job_id)
        assert status == 200, config
        placed = call(
            server, "POST", f"jobs/{job_id}/files", type="input", name="d.dat", cache_token=token
        )
        assert placed[0] == 200, placed
        inputs[job_id] = Path(placed[1]["path"])
    first = inputs["k1"]
    final = run_job(server, "k1", f"chmod u+w {first} && printf tampered > {first}")
    assert final["returncode"] == 0, final
    assert first.read_bytes() == b"tampered"
    assert inputs["k2"].read_bytes() == b"original bytes"
    run_job(server, "k2", f"cp {inputs['k2']} ../outputs/copy.dat")
    assert call(server, "GET", "jobs/k2/files", type="output", name="copy.dat") == (
        200,
        b"original bytes",
    )
