"""Snakemake runs a three-rule workflow through LWR's TES face (``snakemake-executor-plugin-tes``).

Snakemake and the plugin live in a virtualenv of their own (the plugin pins py-tes 0.4), made by
``scripts/services/snakemake-tes-up.sh``. The plugin assumes no shared file system, so Snakemake
needs a storage provider: the ``fs`` one, a directory both sides see (the local manager runs on
this machine). Each task is Snakemake's job script passed as a ``content`` input and run by bash
with ``container_runtime = none``; the host's Snakemake comes from the server's ``PATH``. The
plugin declares ``/tmp`` as the task's working directory, which the ``none`` runtime maps into the
task: so the workflow and its storage live under ``/var/tmp``, not ``/tmp``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import tes

from tests.integration.server import REPO, LwrServer, free_port, write_server_ini

pytestmark = [pytest.mark.integration, pytest.mark.snakemake]

TOKEN = "snakemake-token"
SNAKEFILE = """
rule all:
    input: "c.txt"

rule a:
    output: "a.txt"
    shell: "echo alpha > {output}"

rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "tr a-z A-Z < {input} > {output}"

rule c:
    input: "a.txt", "b.txt"
    output: "c.txt"
    shell: "cat {input} > {output}"
"""


@pytest.fixture(scope="module")
def venv() -> Path:
    """Snakemake's virtualenv (the script is idempotent: instant once installed)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "services" / "snakemake-tes-up.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    line = done.stdout.strip().splitlines()[-1]
    return Path(line.partition("=")[2])


@pytest.fixture
def workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="lwr-tes-snakemake-", dir="/var/tmp"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_three_rule_workflow(venv: Path, workdir: Path) -> None:
    server_dir, flow, storage = workdir / "server", workdir / "flow", workdir / "storage"
    for directory in (server_dir, flow, storage):
        directory.mkdir()
    (flow / "Snakefile").write_text(SNAKEFILE)
    port = free_port()
    write_server_ini(server_dir, port, {"private_token": TOKEN})
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    server = LwrServer(server_dir, port, env=env).start()
    # the plugin prints $GITHUB_WORKSPACE/funnel.log when a task fails: let that be our log
    (server_dir / "funnel.log").symlink_to(server.log_path)
    try:
        argv = [
            str(venv / "bin" / "snakemake"),
            "--executor", "tes",
            "--tes-url", f"{server.url}ga4gh/tes",
            "--tes-token", TOKEN,
            "--jobs", "2",
            "--container-image", "snakemake/snakemake:unused",
            "--default-storage-provider", "fs",
            "--default-storage-prefix", str(storage),
            "--seconds-between-status-checks", "1",
        ]  # fmt: skip
        run = subprocess.run(
            argv,
            cwd=flow,
            capture_output=True,
            text=True,
            timeout=600,
            env={**env, "GITHUB_WORKSPACE": str(server_dir)},
        )
        assert run.returncode == 0, f"{run.stderr[-5000:]}\n{server.log()[-5000:]}"
        assert (storage / "c.txt").read_text() == "alpha\nALPHA\n"
        listed = tes.HTTPClient(server.url, token=TOKEN).list_tasks(view="BASIC").tasks
        assert len(listed) == 3 and {t.state for t in listed} == {"COMPLETE"}
        assert len({t.name for t in listed}) == 3  # one task per rule's job
    finally:
        server.stop()
