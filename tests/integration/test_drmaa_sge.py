"""DrmaaManager and ExternalDrmaaManager against a real one-node Son of Grid Engine.

Start SGE with ``scripts/services/sge-up.sh``. libdrmaa can only be loaded by a Python started
with ``GLIBC_TUNABLES`` set, so each scenario runs in a child interpreter
(``tests/integration/drmaa/driver.py``) with the environment from ``scripts/services/sge.env``;
pytest itself needs no special environment. Skipped when SGE is down, failed under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.drmaa import sge_env

pytestmark = [pytest.mark.integration, pytest.mark.sge]


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return sge_env.sge_environment()


@pytest.fixture
def staging() -> Iterator[Path]:
    """A staging directory every user can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="lwr-sge-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False, timeout=60)


def run(scenario: str, root: Path, env: dict[str, str], *args: str) -> dict:
    """Run one driver scenario in a child interpreter and return its JSON answer."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.drmaa.driver", scenario, str(root), *args],
        env=env,
        cwd=sge_env.REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_complete_fail_and_cancel(env: dict[str, str], staging: Path) -> None:
    result = run("basic", staging, env)
    ok, fail = result["ok"], result["fail"]
    assert (ok["state"], ok["return_code"], ok["stdout"]) == ("complete", "0", "hello\n")
    assert (fail["state"], fail["return_code"]) == ("complete", "3")
    held = result["cancel_queued"]
    assert (held["queued"], held["native"]) == ("queued", "user_on_hold")
    assert held["orphan_found"] and held["gone"]
    assert held["after"] in ("failed", "lost")
    assert result["cancel_running"] == {"running": "running", "gone": True}


def test_jobs_forgotten_by_drmaa_are_judged_by_return_code(
    env: dict[str, str], staging: Path
) -> None:
    launched = run("launch_only", staging, env)
    assert launched["gone"]
    (staging / "ids.json").write_text(json.dumps(launched["ids"]))
    result = run("forgotten", staging, env)
    assert result["with_rc"]["state"] == "complete"
    assert result["no_rc"]["state"] == "lost"
    assert result["no_rc"]["reason"]


def test_external_manager_runs_job_as_the_named_user(env: dict[str, str], staging: Path) -> None:
    user = sge_env.ensure_test_user()
    python = sge_env.helper_python(user, env)
    result = run("external", staging, env, user, python)
    assert (result["state"], result["return_code"]) == ("complete", "0")
    assert result["whoami"] == user
    assert result["owner_after"] == os.getuid()
    assert result["cancel"]["owner_while_running"] != os.getuid()
    assert result["cancel"]["gone"]
