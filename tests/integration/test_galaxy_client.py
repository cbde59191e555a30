"""Galaxy's own client library (``pulsar.client``) runs its full job scenario against LWR.

Each test starts LWR with ``paster serve server.ini`` in a fresh directory and runs
``pulsar.client.test.check``, which stages a tool, config files, inputs with extra files and
metadata, unstructured index files, runs the job, and checks every output, the return code, the
environment, the tmp/home directories and the rewritten paths on the way back.

The scenarios that run jobs on the local backends run twice: with the bash job script and with the
python launcher a server without bash (Windows) uses, forced here with ``launcher = python``. The
default scenario also runs with the path-based file access Windows uses (``LWR_SAFE_PATH=paths``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.conftest import ServerFactory, local_managers, run_check

pytestmark = pytest.mark.integration

LAUNCHERS = pytest.mark.parametrize("launcher", ["bash", "python"])


@pytest.mark.parametrize("safe_path", ["descriptors", "paths"])
@LAUNCHERS
def test_default_options(lwr_server_factory: ServerFactory, launcher: str, safe_path: str) -> None:
    """``safe_path=paths`` forces the path-based fallback Windows uses (``LWR_SAFE_PATH``)."""
    env = {**os.environ, "LWR_SAFE_PATH": safe_path}
    server = lwr_server_factory(managers_ini=local_managers(launcher), env=env)
    run_check(server.url)
    assert f"job files are opened with the {safe_path} backend" in server.log()
    assert f"manager _default_: jobs start with the {launcher} launcher" in server.log()
    assert "finished complete (return code 4)" in server.log()
    assert "cleaned" in server.log()


def test_with_private_token(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory(app_options={"private_token": "s3cret-Token"})
    run_check(server.url, private_token="s3cret-Token")
    assert "s3cret-Token" not in server.log()  # redacted from access lines


@LAUNCHERS
def test_with_requirement_and_env(
    lwr_server_factory: ServerFactory, tmp_path: Path, launcher: str
) -> None:
    deps = tmp_path / "deps"
    env_sh = deps / "dep1" / "1.1" / "env.sh"
    env_sh.parent.mkdir(parents=True)
    env_sh.write_text("MOO=moo_override; export MOO\n")
    server = lwr_server_factory(
        app_options={"tool_dependency_dir": str(deps)}, managers_ini=local_managers(launcher)
    )
    run_check(server.url, test_requirement=True, test_env=True)


def test_with_explicit_tool_declarations(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory()
    run_check(server.url, explicit_tool_declarations=True)


def test_with_legacy_galaxy_json(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory()
    run_check(server.url, legacy_galaxy_json=True)


@LAUNCHERS
def test_named_manager(lwr_server_factory: ServerFactory, launcher: str) -> None:
    managers = (
        "[manager:_default_]\ntype = queued_python\n\n"
        f"[manager:example]\ntype = queued_python\nmax_concurrent_jobs = 2\nlauncher = {launcher}\n"
    )
    server = lwr_server_factory(managers_ini=managers)
    run_check(server.url + "managers/example/")
    assert "job example/123456: finished complete" in server.log()
    assert "job _default_/123456" not in server.log()


@LAUNCHERS
def test_unqueued_manager(lwr_server_factory: ServerFactory, launcher: str) -> None:
    server = lwr_server_factory(managers_ini=local_managers(launcher, "unqueued"))
    run_check(server.url, job_id="galaxy-77")
    assert "job _default_/galaxy-77: finished complete" in server.log()


def test_curl_transport(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory()
    run_check(server.url, transport="curl")
