"""Job metrics: the plugins' commands run in a rendered job script and Galaxy parses the files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from galaxy.job_metrics import JobMetrics as GalaxyJobMetrics

from lwr.errors import ConfigurationError
from lwr.job_metrics import JobMetrics
from lwr.managers import script
from lwr.managers.directory import JobDirectory

CONFIG = """<job_metrics>
  <core/>
  <uname/>
  <env variables="LWR_METRICS_MARK,_GALAXY_JOB_HOME_DIR"/>
  <hostname/>
  <cpuinfo verbose="true"/>
  <meminfo/>
  <cgroup/>
</job_metrics>
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "job_metrics_conf.xml"
    path.write_text(CONFIG)
    return path


def run_job(tmp_path: Path, metrics: JobMetrics, command: str, env: list[dict[str, str]]) -> Path:
    directory = JobDirectory(tmp_path / "job")
    directory.create()
    text = script.render(
        directory, "1", 1, command, env, instrument=metrics.commands(directory.sub("metadata"))
    )
    path = script.write(directory, text)
    subprocess.run(["bash", str(path)], check=True, timeout=60)
    return directory.root


def test_plugins_write_what_galaxy_parses(tmp_path: Path, config: Path) -> None:
    metrics = JobMetrics(config)
    assert metrics.plugins == ("core", "uname", "env", "hostname", "cpuinfo", "meminfo", "cgroup")
    env = [{"name": "LWR_METRICS_MARK", "value": "marked"}]
    job = run_job(tmp_path, metrics, "sleep 1; exit 3", env)
    assert (job / "return_code").read_text().strip() == "3"  # the command's, not the plugins'
    written = sorted(p.name for p in (job / "metadata").iterdir())
    assert "__instrument_core_epoch_start" in written and "__instrument_uname_uname" in written

    properties = GalaxyJobMetrics(str(config)).collect_properties("dest", 1, str(job / "metadata"))
    core = properties["core"]
    assert core["galaxy_slots"] == 1
    assert core["start_epoch"] <= core["end_epoch"]
    assert core["runtime_seconds"] >= 1
    assert properties["env"] == {
        "LWR_METRICS_MARK": "marked",
        "_GALAXY_JOB_HOME_DIR": str(job / "home"),
    }
    assert properties["uname"]["uname"].startswith("Linux")
    assert properties["hostname"]["hostname"]
    assert properties["cpuinfo"]["processor_count"] >= 1
    assert properties["meminfo"]["memtotal"] > 0


def test_client_galaxy_slots_wins(tmp_path: Path, config: Path) -> None:
    metrics = JobMetrics(config)
    job = run_job(tmp_path, metrics, "true", [{"name": "GALAXY_SLOTS", "value": "7"}])
    assert (job / "metadata" / "__instrument_core_galaxy_slots").read_text().strip() == "7"


def test_unsafe_metadata_path_is_not_instrumented(config: Path) -> None:
    assert JobMetrics(config).commands(Path("/tmp/a b/$(id)/metadata")) == ("", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<job_metrics><nosuchplugin/></job_metrics>", "nosuchplugin"),
        ("<job_metrics></job_metrics>", "enables no plugin"),
        ("<job_metrics>", "job_metrics_conf.xml"),
    ],
)
def test_bad_configuration_stops_the_server(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "job_metrics_conf.xml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        JobMetrics(path)


def test_yaml_configuration(tmp_path: Path) -> None:
    path = tmp_path / "job_metrics_conf.yml"
    path.write_text("- type: core\n- type: env\n  variables: HOME\n")
    assert JobMetrics(path).plugins == ("core", "env")
