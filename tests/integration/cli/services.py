"""Find the Slurm and sshd started by scripts/services/*-up.sh; say why when they are missing.

The tests pass the reason to ``tests.conftest.require_service``, which skips locally and fails
under ``CI=true`` (where the CI script has started the services, so a missing one is a bug).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: where sshd-up.sh keeps its files and its env file, unless LWR_SSHD_DIR says otherwise
DEFAULT_SSHD_DIR = Path("/var/lib/lwr-test-sshd")
SSH_VARIABLES = ("HOST", "PORT", "USER", "KEY", "KNOWN_HOSTS")


def slurm_problem() -> str | None:
    """Why the one-node Slurm cannot be used, or None if it answers."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return "Slurm is not installed (run scripts/services/slurm-up.sh)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "scontrol ping timed out (run scripts/services/slurm-up.sh)"
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return "slurmctld is not running (run scripts/services/slurm-up.sh)"
    return None


def ssh_settings() -> dict[str, str] | None:
    """The LWR_TEST_SSH_* settings from the environment, else from sshd-up.sh's env file."""
    found = {name: os.environ.get(f"LWR_TEST_SSH_{name}", "") for name in SSH_VARIABLES}
    if not all(found.values()):
        env_file = Path(os.environ.get("LWR_SSHD_DIR", DEFAULT_SSHD_DIR)) / "env"
        try:
            lines = env_file.read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            key, _, value = line.removeprefix("export ").partition("=")
            if key.startswith("LWR_TEST_SSH_"):
                found[key.removeprefix("LWR_TEST_SSH_")] = value.strip()
    return found if all(found.values()) else None


def ssh_problem(settings: dict[str, str] | None) -> str | None:
    """Why the test sshd cannot be used, or None if a key login works."""
    if settings is None:
        return "no test sshd configured (run: bash scripts/services/sshd-up.sh)"
    argv = [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
        "-o", f"UserKnownHostsFile={settings['KNOWN_HOSTS']}", "-i", settings["KEY"],
        "-p", settings["PORT"], "-l", settings["USER"], settings["HOST"], "true",
    ]  # fmt: skip
    try:
        login = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ssh to the test sshd failed: {exc}"
    if login.returncode != 0:
        return f"ssh to the test sshd failed: {login.stderr.strip()[:200]}"
    return None
