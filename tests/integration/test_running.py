"""Running the server the ways the README and docs say: run.sh, paster, ``lwr serve``, HTTPS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.integration.conftest import ServerFactory, run_check
from tests.integration.server import BIN, REPO, LwrServer, free_port, write_server_ini

pytestmark = pytest.mark.integration


def _copy_distribution(directory: Path, port: int) -> None:
    for name in ("run.sh", "server.ini.sample", "job_managers.ini.sample", "local_env.sh.sample"):
        shutil.copy(REPO / name, directory / name)
    sample = (directory / "server.ini.sample").read_text().replace("port = 8913", f"port = {port}")
    (directory / "server.ini.sample").write_text(sample)


def _wait_gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_run_sh_daemon_and_stop(tmp_path: Path) -> None:
    port = free_port()
    _copy_distribution(tmp_path, port)
    (tmp_path / "local_env.sh").write_text("export LWR_TEST_LOCAL_ENV=sourced\n")
    env = {**os.environ, "LWR_VIRTUALENV": sys.prefix}
    subprocess.run(["./run.sh", "--daemon"], cwd=tmp_path, env=env, check=True, timeout=60)
    server = LwrServer(tmp_path, port)
    server.log_path = tmp_path / "paster.log"
    try:
        server.wait_healthy()
        assert (tmp_path / "server.ini").exists() and (tmp_path / "job_managers.ini").exists()
        pid = int((tmp_path / "paster.pid").read_text())
        run_check(server.url)
        with open(f"/proc/{pid}/environ", "rb") as handle:
            assert b"LWR_TEST_LOCAL_ENV=sourced" in handle.read()
    finally:
        subprocess.run(["./run.sh", "--stop-daemon"], cwd=tmp_path, env=env, timeout=60)
    assert _wait_gone(pid)
    assert "finished complete" in (tmp_path / "paster.log").read_text()


def test_lwr_serve_daemon_via_python_m(tmp_path: Path) -> None:
    port = free_port()
    write_server_ini(tmp_path, port)
    cmd = [sys.executable, "-m", "lwr", "serve", "server.ini"]
    subprocess.run(
        [*cmd, "--daemon", "--pid-file", "lwr.pid", "--log-file", "lwr.log"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    server = LwrServer(tmp_path, port)
    server.log_path = tmp_path / "lwr.log"
    try:
        server.wait_healthy()
        run_check(server.url)
    finally:
        subprocess.run(
            [sys.executable, "-m", "lwr", "serve", "--stop-daemon", "--pid-file", "lwr.pid"],
            cwd=tmp_path,
            timeout=60,
        )
    assert not (tmp_path / "lwr.pid").exists()
    assert "finished complete" in (tmp_path / "lwr.log").read_text()


def test_lwr_console_script_foreground(tmp_path: Path) -> None:
    port = free_port()
    write_server_ini(tmp_path, port)
    proc = subprocess.Popen(
        [str(BIN / "lwr"), "serve"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server = LwrServer(tmp_path, port)
        server.process = proc
        server.wait_healthy()
        assert server.get("healthz")[1]["status"] == "ok"
    finally:
        proc.terminate()
        assert proc.wait(20) == 0


def test_paster_daemon(tmp_path: Path) -> None:
    port = free_port()
    write_server_ini(tmp_path, port)
    paster = str(BIN / "paster")
    subprocess.run(
        [paster, "serve", "server.ini", "--daemon", "--pid-file=p.pid", "--log-file=p.log"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    server = LwrServer(tmp_path, port)
    try:
        server.wait_healthy()
    finally:
        subprocess.run(
            [paster, "serve", "--stop-daemon", "--pid-file=p.pid"], cwd=tmp_path, timeout=60
        )
    assert not (tmp_path / "p.pid").exists()


def test_https_with_generated_certificate(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory(app_options={"ssl_pem": "*"}, scheme="https")
    status, body = server.get("healthz")
    assert status == 200 and body["status"] == "ok"
    status, config = server.request("POST", "jobs", {"job_id": "tls"})
    assert status == 200 and config["job_id"] == "tls"


def test_configuration_error_is_clear(tmp_path: Path) -> None:
    port = free_port()
    write_server_ini(tmp_path, port, app_options={"staging_dirctory": "x"})
    proc = subprocess.run(
        [str(BIN / "paster"), "serve", "server.ini"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "staging_dirctory" in proc.stderr


@pytest.mark.skipif(
    not IN_CI and not os.environ.get("LWR_TEST_FRESH_VENV"),
    reason="creates a virtualenv (slow); runs in CI or with LWR_TEST_FRESH_VENV=1",
)
def test_run_sh_creates_its_virtualenv(tmp_path: Path) -> None:
    """The README's first command on a machine with nothing installed: run.sh builds .venv."""
    checkout = tmp_path / "lwr"
    shutil.copytree(
        REPO,
        checkout,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "files",
            "*.egg-info",
            "__pycache__",
            "docs/_build",
            "server.ini",
            "job_managers.ini",
            "bench",
        ),
    )
    port = free_port()
    sample = (checkout / "server.ini.sample").read_text().replace("port = 8913", f"port = {port}")
    (checkout / "server.ini.sample").write_text(sample)
    env = {k: v for k, v in os.environ.items() if k not in ("LWR_VIRTUALENV", "VIRTUAL_ENV")}
    subprocess.run(["./run.sh", "--daemon"], cwd=checkout, env=env, check=True, timeout=600)
    server = LwrServer(checkout, port)
    server.log_path = checkout / "paster.log"
    try:
        server.wait_healthy(60)
        run_check(server.url)
    finally:
        subprocess.run(["./run.sh", "--stop-daemon"], cwd=checkout, env=env, timeout=60)
