"""A job cancelled from Galaxy is really killed on LWR: processes gone, state "cancelled"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.galaxy.api import Galaxy
from tests.integration.galaxy.conftest import TOKEN
from tests.integration.test_job_lifecycle import job_processes

pytestmark = [pytest.mark.integration, pytest.mark.galaxy, pytest.mark.timeout(900)]


def _started_job(jobs_directory: Path, timeout: float = 180.0) -> Path:
    """The LWR job directory whose command has started (the sleep tool touches a marker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(jobs_directory.glob("*/working/lwr_test_started"))
        if found:
            return found[0].parent.parent
        time.sleep(0.3)
    raise AssertionError(f"no job of {jobs_directory} started in {timeout}s")


@pytest.mark.parametrize("environment", ["rest", "mq"])
def test_cancel_from_galaxy_kills_the_job(galaxy: Galaxy, environment: str) -> None:
    env = galaxy.environments[environment]
    run = galaxy.run("sleep", environment, galaxy.input_dataset())
    job_id = run["jobs"][0]["id"]
    job_directory = _started_job(env.jobs_directory)
    lwr_id = job_directory.name
    working = str(job_directory / "working")
    assert job_processes(working), "the sleep job should be running on LWR"
    galaxy.wait_state(job_id, {"running"})

    galaxy.gi.jobs.cancel_job(job_id)
    job = galaxy.wait_state(job_id, {"deleted"})
    assert job["state"] == "deleted"

    # Galaxy says "deleted" before its kill reaches LWR, and LWR kills the processes before it
    # records and logs the cancel (a database write, seconds on a loaded machine): wait for
    # each of those events, not for the first one only.
    killed = f"job _default_/{lwr_id}: cancelled (killed)"
    deadline = time.monotonic() + 120
    while (job_processes(working) or killed not in env.server.log()) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.3)
    assert not job_processes(working), "cancelling in Galaxy must kill the job's processes"
    assert killed in env.server.log()
    status, body = env.server.get(f"jobs/{lwr_id}/status", private_token=TOKEN)
    assert (status, body["status"]) == (200, "cancelled"), body
