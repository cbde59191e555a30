"""LWR's own client against real servers: ours in every file action, and a real Pulsar 0.16.

The sanity job (:mod:`lwr.client.sanity`) exercises every staging path; each test asserts that
every check passed and that the files really travelled by the action under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.client import JobClient, TransportOptions
from lwr.client.runner import JobResult
from lwr.client.sanity import Check, Scenario
from lwr.staging import digest
from tests.conftest import require_service
from tests.integration.conftest import ServerFactory
from tests.integration.files_endpoint import FilesEndpoint
from tests.integration.pulsar_server import PulsarServer, ensure_venv
from tests.integration.server import BIN, REPO, LwrServer

pytestmark = pytest.mark.integration


def run_scenario(url: str, root: Path, action: str, **kwargs: object) -> tuple[JobResult, Scenario]:
    scenario = Scenario(root)
    scenario.prepare()
    prepare = kwargs.pop("prepare", None)
    if callable(prepare):
        prepare(scenario)
    checksum = bool(kwargs.pop("checksum", False))
    token = kwargs.pop("private_token", None)
    assert token is None or isinstance(token, str)
    options = TransportOptions(progress=False, checksum=checksum)
    client = JobClient(url, scenario.job_id, options=options, private_token=token)
    result, checks = scenario.run(client, action, **kwargs)  # type: ignore[arg-type]
    assert_passed(checks)
    assert result is not None
    return result, scenario


def assert_passed(checks: list[Check]) -> None:
    failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    assert not failed, "\n".join(failed)
    assert len(checks) >= 20


def actions_of(result: JobResult, file_type: str) -> set[str]:
    return {f.action for f in result.staged.files if f.file_type == file_type}


@pytest.fixture
def server(lwr_server_factory: ServerFactory, tmp_path: Path) -> LwrServer:
    return lwr_server_factory(app_options={"remote_copy_allowed_paths": str(tmp_path)})


def test_transfer_with_checksums(
    server: LwrServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``checksum`` on, the server offers SHA-256 for every file and the client checks it."""
    hashed: list[str] = []
    real = digest.sha256_file

    def spy(path: Path | str) -> bytes:
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(digest, "sha256_file", spy)
    result, _ = run_scenario(server.url, tmp_path / "job", "transfer", checksum=True)
    assert actions_of(result, "input") == {"transfer"}
    # downloads are hashed before they replace their target: only when the server offered one
    assert any(name.startswith(".lwr-download-") for name in hashed)
    uploads = [f for f in result.staged.files if f.action == "transfer"]
    assert len(hashed) >= len(uploads)


@pytest.mark.parametrize("action", ["transfer", "copy", "symlink", "none"])
def test_client_side_actions(server: LwrServer, tmp_path: Path, action: str) -> None:
    result, _ = run_scenario(server.url, tmp_path / "job", action)
    expected = {"none": "none", "symlink": "symlink"}.get(action, action)
    if action == "none":
        assert actions_of(result, "input") == set()  # nothing moved: the paths stayed
        assert actions_of(result, "workdir") == {"copy"}  # none means copy for job dirs
    else:
        assert actions_of(result, "input") == {expected}
        assert actions_of(result, "unstructured") == {expected}
    assert not result.staged.setup_entries


def test_rewrite_action_for_inputs(server: LwrServer, tmp_path: Path) -> None:
    """Inputs under data/ are "mounted" at mirror/ on the server: paths rewritten, not sent."""
    root = tmp_path / "job"
    rule = {
        "path": str(root / "data"),
        "action": "rewrite",
        "source_directory": str(root / "data"),
        "destination_directory": str(root / "mirror"),
    }

    def mirror(scenario: Scenario) -> None:
        shutil.copytree(root / "data", root / "mirror")

    result, _ = run_scenario(server.url, root, "transfer", extra_rules=[rule], prepare=mirror)
    assert actions_of(result, "input") == set()
    rewritten = [f.remote for f in result.staged.files if f.action == "rewrite"]
    assert str(root / "mirror" / "dataset_0_files" / "sub" / "extra") in rewritten


def test_remote_transfer(server: LwrServer, tmp_path: Path) -> None:
    with FilesEndpoint(job_key="client-key-42") as endpoint:
        result, _ = run_scenario(
            server.url, tmp_path / "job", "remote_transfer", files_endpoint=endpoint.url
        )
    kinds = endpoint.kinds()
    assert {("GET", "input"), ("GET", "tool"), ("GET", "unstructured")} <= kinds
    assert {("POST", "output"), ("POST", "output_workdir"), ("POST", "output_metadata")} <= kinds
    assert {e["action"]["action_type"] for e in result.staged.setup_entries} == {"remote_transfer"}
    assert "client-key-42" not in "".join(
        line for line in server.log().splitlines() if "[lwr.staging" in line
    )


def test_remote_copy(server: LwrServer, tmp_path: Path) -> None:
    result, _ = run_scenario(server.url, tmp_path / "job", "remote_copy")
    assert {e["action"]["action_type"] for e in result.staged.setup_entries} == {"remote_copy"}
    assert result.collected is not None
    assert {kind for _o, kind in result.collected.left} == {"remote_copy"}
    assert not result.collected.fetched


def run_client_tests(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "run_client_tests.py"), f"--url={url}", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )


def test_run_client_tests_script(lwr_server_factory: ServerFactory, tmp_path: Path) -> None:
    server = lwr_server_factory(app_options={"private_token": "tok-123"})
    done = run_client_tests(server.url, "--private_token", "tok-123")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].endswith("passed, 0 failed")
    assert sum(1 for line in lines if line.startswith("PASS")) >= 20
    rules = tmp_path / "rules.yaml"
    rules.write_text("paths:\n  - path_types: output\n    action: copy\n")
    done = run_client_tests(
        server.url, "--private_token", "tok-123", f"--file_action_config={rules}", "--checksum"
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_run_client_tests_reports_failure(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory(app_options={"private_token": "right"})
    done = run_client_tests(server.url, "--private_token", "not-the-token-xyz")
    assert done.returncode == 1
    assert "FAIL" in done.stdout and "not-the-token-xyz" not in done.stdout  # the token is redacted


def test_lwr_submit(server: LwrServer, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("pear\napple\nfig\n")
    done = subprocess.run(
        [
            str(BIN / "lwr"),
            "submit",
            "--url",
            server.url,
            "--input",
            "a.txt",
            "--output",
            "out.txt",
            "--",
            "sort a.txt > out.txt; echo sorted; echo careful >&2; exit 7",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 7, done.stderr
    assert done.stdout == "sorted\n"
    assert "careful" in done.stderr
    assert (tmp_path / "out.txt").read_text() == "apple\nfig\npear\n"


@pytest.fixture(scope="module")
def pulsar_venv() -> Iterator[Path]:
    venv, why = ensure_venv()
    require_service(venv is not None, f"no Pulsar 0.16 virtualenv: {why}")
    assert venv is not None
    yield venv


@pytest.fixture
def pulsar(pulsar_venv: Path, tmp_path: Path) -> Iterator[PulsarServer]:
    server = PulsarServer(pulsar_venv, tmp_path / "pulsar", private_token="pulsar-tok")
    server.start()
    yield server
    server.stop()


def test_against_real_pulsar(pulsar: PulsarServer, tmp_path: Path) -> None:
    done = run_client_tests(pulsar.url, "--private_token", "pulsar-tok")
    assert done.returncode == 0, done.stdout + done.stderr + pulsar.log()[-3000:]
    # Pulsar offers no checksum: asking for one must not break anything
    run_scenario(
        pulsar.url, tmp_path / "checked", "transfer", checksum=True, private_token="pulsar-tok"
    )
    for action in ("copy", "symlink"):
        scenario = Scenario(tmp_path / action)
        scenario.prepare()
        client = JobClient(pulsar.url, scenario.job_id, private_token="pulsar-tok")
        _result, checks = scenario.run(client, action)
        assert_passed(checks)
    assert os.path.exists(pulsar.directory / "app.yml")
