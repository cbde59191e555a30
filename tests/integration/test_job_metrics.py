"""Job metrics with Galaxy's own client: the ``__instrument_*`` files come back, Galaxy parses them.

The server runs with a ``job_metrics_config_file`` enabling several galaxy-job-metrics plugins.
A job runs through the real ``pulsar.client``; ``finish_job`` downloads the remote metadata
directory's files into the client's metadata directory, which is where Galaxy's Pulsar runner
collects job metrics from — and the same package's parser, as Galaxy calls it, reads them.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.galaxy_job import GalaxyJob

pytestmark = pytest.mark.integration

METRICS = """<?xml version="1.0"?>
<job_metrics>
  <core/>
  <uname/>
  <env variables="LWR_METRICS_MARK"/>
  <hostname/>
  <cpuinfo/>
  <meminfo/>
  <cgroup/>
</job_metrics>
"""


def test_instrument_files_come_back_and_parse(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    from galaxy.job_metrics import JobMetrics

    config = tmp_path / "job_metrics_conf.xml"
    config.write_text(METRICS)
    server = lwr_server_factory(app_options={"job_metrics_config_file": str(config)})
    env = [{"name": "LWR_METRICS_MARK", "value": "from-galaxy"}]
    job = GalaxyJob(tmp_path / "galaxy", env=env)
    status = job.run(server.url, "metrics-1")
    assert status["status"] == "complete" and status["returncode"] == 0, status

    names = {path.name for path in job.metadata.iterdir()}
    expected = {
        "__instrument_core_galaxy_slots",
        "__instrument_core_epoch_start",
        "__instrument_core_epoch_end",
        "__instrument_uname_uname",
        "__instrument_env_vars",
        "__instrument_hostname_hostname",
        "__instrument_cpuinfo_cpuinfo",
        "__instrument_meminfo_meminfo",
    }
    assert expected <= names, names

    properties = JobMetrics(str(config)).collect_properties("lwr", 1, str(job.metadata))
    core = properties["core"]
    assert core["galaxy_slots"] == 1
    assert 0 <= core["end_epoch"] - core["start_epoch"] == core["runtime_seconds"] < 60
    assert properties["uname"]["uname"].startswith("Linux ")
    assert properties["env"] == {"LWR_METRICS_MARK": "from-galaxy"}
    assert properties["hostname"]["hostname"].split(".")[0] == socket.gethostname().split(".")[0]
    assert properties["cpuinfo"]["processor_count"] >= 1
    assert properties["meminfo"]["memtotal"] > 0
    assert job.output.read_text() == "one\ntwo\n"


def test_without_metrics_no_instrument_files(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory()
    job = GalaxyJob(tmp_path / "galaxy")
    assert job.run(server.url, "plain-1")["status"] == "complete"
    assert not [p for p in job.metadata.iterdir() if p.name.startswith("__instrument")]


def test_unknown_plugin_stops_the_server(lwr_server_factory: ServerFactory, tmp_path: Path) -> None:
    config = tmp_path / "job_metrics_conf.xml"
    config.write_text("<job_metrics><collectl_typo/></job_metrics>")
    with pytest.raises(RuntimeError, match=r"job_metrics_config_file .*collectl_typo"):
        lwr_server_factory(app_options={"job_metrics_config_file": str(config)})
