"""Galaxy's full job scenario through LWR on real schedulers: Slurm (local and SSH shells), SGE.

The other scheduler tests drive the managers directly; these start LWR as a user would, with a
``job_managers.ini`` naming the scheduler, and run ``pulsar.client.test.check`` against
``/managers/NAME/`` — so the job script, staging, status and recovery are exercised end to end.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.integration.cli.services import slurm_problem, ssh_problem, ssh_settings
from tests.integration.conftest import ServerFactory, run_check
from tests.integration.test_job_lifecycle import FINAL, client_for, wait_status

pytestmark = pytest.mark.integration


@pytest.fixture
def slurm() -> None:
    problem = slurm_problem()
    require_service(problem is None, problem or "")


@pytest.mark.slurm
def test_check_scenario_on_slurm_local_shell(
    slurm: None, lwr_server_factory: ServerFactory
) -> None:
    server = lwr_server_factory(
        managers_ini=(
            "[manager:slurm]\ntype = queued_cli\njob_plugin = slurm\nshell_plugin = local\n"
            "min_polling_interval = 0.5\n"
        )
    )
    run_check(server.url + "managers/slurm/", job_id="slurm-local-1")
    assert "job slurm/slurm-local-1: finished complete (return code 4)" in server.log()


@pytest.mark.slurm
@pytest.mark.sshd
def test_check_scenario_on_slurm_over_ssh(slurm: None, lwr_server_factory: ServerFactory) -> None:
    settings = ssh_settings()
    problem = ssh_problem(settings)
    require_service(problem is None, problem or "")
    assert settings is not None
    server = lwr_server_factory(
        managers_ini=(
            "[manager:slurm_ssh]\ntype = queued_cli\njob_plugin = Slurm\n"
            "shell_plugin = SecureShell\n"
            f"shell_hostname = {settings['HOST']}\nshell_port = {settings['PORT']}\n"
            f"shell_username = {settings['USER']}\nshell_private_key = {settings['KEY']}\n"
            f"shell_known_hosts = {settings['KNOWN_HOSTS']}\nmin_polling_interval = 0.5\n"
        )
    )
    run_check(server.url + "managers/slurm_ssh/", job_id="slurm-ssh-1")
    assert "job slurm_ssh/slurm-ssh-1: finished complete (return code 4)" in server.log()


def _in_squeue(name_part: str) -> bool:
    out = subprocess.run(
        ["squeue", "-h", "-o", "%j"], capture_output=True, text=True, timeout=30
    ).stdout
    return any(name_part in line for line in out.splitlines())


@pytest.mark.slurm
def test_restart_while_slurm_job_runs(
    slurm: None, lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory(
        managers_ini="[manager:slurm]\ntype = queued_cli\nmin_polling_interval = 0.5\n"
    )
    url = server.url + "managers/slurm/"
    client = client_for(server, "slurm-restart", url=url)
    client.setup("t", "1")
    marker = tmp_path / "ran"
    client.launch(f"echo started >> {marker}; sleep 6; echo done >> {marker}; exit 3")
    wait_status(client, {"running"}, timeout=60)
    server.kill9()
    server.start()
    status = wait_status(client, FINAL, timeout=90)
    assert (status["status"], status["returncode"]) == ("complete", 3), status
    assert marker.read_text().splitlines() == ["started", "done"]
    assert not _in_squeue("slurm-restart")


@pytest.mark.slurm
def test_cancel_running_slurm_job_through_lwr(
    slurm: None, lwr_server_factory: ServerFactory
) -> None:
    server = lwr_server_factory(
        managers_ini="[manager:slurm]\ntype = queued_cli\nmin_polling_interval = 0.5\n"
    )
    client = client_for(server, "slurm-cancel", url=server.url + "managers/slurm/")
    client.setup("t", "1")
    client.launch("sleep 120")
    wait_status(client, {"running"}, timeout=60)
    assert _in_squeue("slurm-cancel")
    client.kill()
    assert wait_status(client, FINAL, timeout=60)["status"] == "cancelled"
    deadline = time.monotonic() + 30
    while _in_squeue("slurm-cancel") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _in_squeue("slurm-cancel")


@pytest.fixture
def sge_env() -> dict[str, str]:
    from tests.integration.drmaa.sge_env import sge_environment

    return {**os.environ, **sge_environment()}


@pytest.fixture
def shared_staging() -> Iterator[Path]:
    """A staging directory other users can traverse (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="lwr-sge-", dir="/var/tmp"))
    directory.chmod(0o755)
    yield directory
    subprocess.run(["rm", "-rf", str(directory)], check=False)


def python_dependency(root: Path, python: str) -> str:
    """A Galaxy-style package the scenario requires (dep1 1.1) that also puts ``python`` on PATH.

    SGE starts jobs with a minimal environment (no ``-V``), so the interpreter the scenario's
    command line calls must come from the tool's requirements — as it would in production.
    """
    env_sh = root / "deps" / "dep1" / "1.1" / "env.sh"
    env_sh.parent.mkdir(parents=True)
    env_sh.write_text(
        f"PATH={Path(python).parent}:$PATH; export PATH\nMOO=moo_override; export MOO\n"
    )
    for path in (root / "deps", env_sh.parent.parent, env_sh.parent):
        path.chmod(0o755)
    env_sh.chmod(0o644)
    return str(root / "deps")


@pytest.mark.sge
def test_check_scenario_on_sge_drmaa(
    sge_env: dict[str, str], lwr_server_factory: ServerFactory, shared_staging: Path
) -> None:
    import sys

    server = lwr_server_factory(
        app_options={
            "staging_directory": str(shared_staging / "jobs"),
            "tool_dependency_dir": python_dependency(shared_staging, sys.executable),
        },
        managers_ini="[manager:sge]\ntype = queued_drmaa\nmin_polling_interval = 0.5\n",
        env=sge_env,
    )
    run_check(server.url + "managers/sge/", job_id="sge-drmaa-1", test_requirement=True)
    assert "job sge/sge-drmaa-1: finished complete (return code 4)" in server.log()


@pytest.mark.sge
def test_check_scenario_on_sge_as_real_user(
    sge_env: dict[str, str], lwr_server_factory: ServerFactory, shared_staging: Path
) -> None:
    from tests.integration.drmaa.sge_env import ensure_test_user, helper_python

    user = ensure_test_user()
    python = helper_python(user, sge_env)
    launch = f"{python} -I -m lwr.scripts.drmaa_launch"
    kill = f"{python} -I -m lwr.scripts.drmaa_kill"
    chown = f"{python} -I -m lwr.scripts.chown_working_directory"
    server = lwr_server_factory(
        app_options={
            "staging_directory": str(shared_staging / "jobs"),
            "tool_dependency_dir": python_dependency(shared_staging, python),
        },
        managers_ini=(
            "[manager:sge_user]\ntype = queued_external_drmaa\nmin_polling_interval = 0.5\n"
            f"drmaa_launch_script = {launch}\ndrmaa_kill_script = {kill}\n"
            f"chown_working_directory_script = {chown}\n"
        ),
        env=sge_env,
    )
    run_check(
        server.url + "managers/sge_user/", job_id="sge-user-1", user=user, test_requirement=True
    )
    assert "job sge_user/sge-user-1: finished complete (return code 4)" in server.log()


@pytest.mark.sge
def test_sge_time_limit_kill_ends_the_job_with_a_reason(
    sge_env: dict[str, str], lwr_server_factory: ServerFactory, shared_staging: Path
) -> None:
    """SGE kills a job past its hard run-time limit (``h_rt``): LWR reports it, with why."""
    server = lwr_server_factory(
        app_options={"staging_directory": str(shared_staging / "jobs")},
        managers_ini=(
            "[manager:sge_short]\ntype = queued_drmaa\nmin_polling_interval = 0.5\n"
            "native_specification = -l h_rt=0:0:3\n"
        ),
        env=sge_env,
    )
    client = client_for(server, "sge-h-rt", url=server.url + "managers/sge_short/")
    client.setup("t", "1")
    client.launch("sleep 120; echo never")
    status = wait_status(client, FINAL, timeout=120)
    assert status["status"] in ("failed", "lost"), status
    assert status["returncode"] is None
    assert "LWR: job" in status["stderr"] and status.get("reason"), status
