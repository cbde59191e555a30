"""Galaxy shows the job metrics LWR measured (issue 10): the plugins run on LWR, Galaxy parses.

Galaxy instruments no Pulsar job itself (its Pulsar runner sends the bare command), so every
metric below was written by LWR's job script (``job_metrics_config_file``), downloaded by
Galaxy's client from the job's ``metadata/`` directory and parsed by Galaxy. Read as Galaxy's
admin through ``GET /api/jobs/{id}/metrics``, with the values as Galaxy formats them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.integration.galaxy.api import Galaxy
from tests.integration.galaxy.features import METRICS_MARK

pytestmark = [pytest.mark.integration, pytest.mark.galaxy, pytest.mark.timeout(900)]

ENVIRONMENT = "rest_metrics"
#: the cgroup plugin reads the job's memory cgroup here under cgroup v1
CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")


def metrics(galaxy: Galaxy, job_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(plugin, name) -> the metric as Galaxy's API gives it (title, value, raw_value)."""
    return {(m["plugin"], m["name"]): m for m in galaxy.gi.jobs.get_metrics(job_id)}


def check_metrics(tool: str, shown: dict[tuple[str, str], dict[str, Any]]) -> None:
    """What the by-hand run showed (docs/job_metrics.md), plugin by plugin, for ``tool``'s job."""
    assert shown[("core", "galaxy_slots")]["value"] == "1", (tool, shown)
    start = float(shown[("core", "start_epoch")]["raw_value"])
    end = float(shown[("core", "end_epoch")]["raw_value"])
    assert 0 < start <= end, (tool, shown)
    assert shown[("uname", "uname")]["value"].startswith("Linux "), (tool, shown)
    assert shown[("env", METRICS_MARK[0])]["value"] == METRICS_MARK[1], (tool, shown)
    assert shown[("hostname", "hostname")]["value"] == socket.gethostname(), (tool, shown)
    assert shown[("cpuinfo", "processor_count")]["value"] == str(os.cpu_count()), (tool, shown)
    assert float(shown[("meminfo", "memtotal")]["raw_value"]) > 0, (tool, shown)
    if CGROUP_V1_MEMORY.is_dir():  # this machine (cgroup v1): the job's cgroup memory use
        assert float(shown[("cgroup", "memory.max_usage_in_bytes")]["raw_value"]) > 0, (tool, shown)


def test_galaxy_shows_the_metrics_lwr_measured(galaxy: Galaxy) -> None:
    dataset = galaxy.input_dataset()
    started = {tool: galaxy.run(tool, ENVIRONMENT, dataset) for tool in ("cat", "fail")}
    jobs = {tool: galaxy.wait(run["jobs"][0]["id"]) for tool, run in started.items()}
    assert jobs["cat"]["state"] == "ok", (jobs["cat"], galaxy.tail())
    assert (jobs["fail"]["state"], jobs["fail"]["exit_code"]) == ("error", 3), jobs["fail"]

    for tool, job in jobs.items():
        check_metrics(tool, metrics(galaxy, job["id"]))
