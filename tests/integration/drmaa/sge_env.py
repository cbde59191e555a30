"""Finding the SGE started by scripts/services/sge-up.sh, and what the DRMAA tests need around it.

Kept out of ``tests/integration/conftest.py`` (shared by every backend) so the SGE specifics live
with the SGE tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parents[3]
ENV_FILE = Path(os.environ.get("SGE_ENV_FILE", REPO / "scripts" / "services" / "sge.env"))
#: the unprivileged user the external-DRMAA test creates and runs a job as
TEST_USER = "lwr-sge-test"
#: a Python every user can run, with drmaa and this checkout importable (see helper_python)
HELPER_VENV = Path("/var/tmp/lwr-sge-helper-venv")


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export KEY=VALUE`` lines sge-up.sh writes."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            env[key.strip()] = value.strip()
    return env


def unavailable(reason: str) -> None:
    """Skip locally, but fail under CI (1/true/yes): CI must never pass by skipping SGE tests."""
    if IN_CI:
        pytest.fail(f"SGE is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def sge_environment() -> dict[str, str]:
    """The environment for a child that talks to SGE, or skip/fail when SGE is not up."""
    if not ENV_FILE.exists():
        unavailable(f"SGE not started ({ENV_FILE} missing): run scripts/services/sge-up.sh")
    env = {**os.environ, **read_env_file(ENV_FILE)}
    try:
        probe = subprocess.run(
            ["qstat", "-f"], env=env, capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"SGE not answering ({exc}): run scripts/services/sge-up.sh")
    if probe.returncode != 0:
        unavailable(f"SGE not answering (qstat: {probe.stderr.strip()}): run sge-up.sh")
    return env


def ensure_test_user() -> str:
    """Create the unprivileged test user once (needs root, like the sudo the manager uses)."""
    if os.geteuid() != 0:
        unavailable("the external-DRMAA test needs root (useradd, sudo -u)")
    if shutil.which("sudo") is None:
        unavailable("sudo is not installed (scripts/services/sge-up.sh installs it)")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/bin/bash", TEST_USER], check=True, timeout=30)
    return TEST_USER


def helper_python(user: str, env: dict[str, str]) -> str:
    """A Python that ``user`` can execute and that imports drmaa and this checkout's lwr.

    In production LWR lives in a venv every job user can read. A developer's interpreter may sit
    in root's home (pyenv under /root, mode 0700); then a venv from Debian's python3 is made once
    in /var/tmp with drmaa from PyPI and a fresh copy of this checkout's lwr package.
    """
    if _can_import(sys.executable, user, env):
        return sys.executable
    python = HELPER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(
            ["/usr/bin/python3", "-m", "venv", str(HELPER_VENV)], check=True, timeout=120
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "drmaa>=0.7.9"], check=True, timeout=300
        )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    # a copy, not a .pth into the checkout: the checkout may sit where the user cannot read
    Path(site, "lwr-checkout.pth").unlink(missing_ok=True)
    shutil.rmtree(Path(site, "lwr"), ignore_errors=True)
    shutil.copytree(REPO / "lwr", Path(site, "lwr"), ignore=shutil.ignore_patterns("__pycache__"))
    if not _can_import(str(python), user, env):
        unavailable(f"{python} cannot import lwr and drmaa as {user}")
    return str(python)


# without the DRMAA environment (sudo resets it) only look drmaa up, do not load libdrmaa
_IMPORT_PROBE = "import importlib.util, lwr.scripts; assert importlib.util.find_spec('drmaa')"


def _can_import(python: str, user: str, env: dict[str, str]) -> bool:
    probe = subprocess.run(
        ["sudo", "-n", "-u", user, python, "-I", "-c", _IMPORT_PROBE],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    return probe.returncode == 0
