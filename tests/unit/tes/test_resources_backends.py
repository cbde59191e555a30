"""The mapped resources as the backends themselves read them (no scheduler needed).

The mapping only produces the submit parameters Galaxy's client could send; these tests feed them
to the HTCondor manager's submit description, the DRMAA job description and the CLI manager's
parsing of native arguments, to show each backend takes them as meant.
"""

from __future__ import annotations

from pathlib import Path

from lwr.managers.base import LaunchSpec
from lwr.managers.cli.manager import _native_args
from lwr.managers.condor import CondorManager
from lwr.managers.drmaa_session import JobDescription
from lwr.tes.models import Resources
from lwr.tes.resources import map_resources


def spec_for(params: dict[str, str], tmp_path: Path) -> LaunchSpec:
    """The LaunchSpec the stateful layer builds from a job's ``params`` (as its ``_spec`` does)."""
    return LaunchSpec(
        manager="m",
        job_id="j",
        attempt=1,
        job_directory=tmp_path,
        working_directory=tmp_path / "working",
        script=tmp_path / "job.sh",
        native_specification=params.get("native_specification")
        or params.get("submit_native_specification"),
        submit_params=params,
    )


def test_condor_submit_description(tmp_path: Path) -> None:
    mapped = map_resources("condor", Resources(cpu_cores=2, ram_gb=1, disk_gb=2))
    text = CondorManager("c", {}).submit_description(spec_for(mapped.params, tmp_path))
    for line in ("request_cpus = 2", "request_memory = 1024", "request_disk = 2048M"):
        assert line in text.splitlines()


def test_drmaa_native_specification(tmp_path: Path) -> None:
    mapped = map_resources("sge", Resources(cpu_cores=4, ram_gb=0.5), default_native="-q all.q")
    description = JobDescription.from_spec(spec_for(mapped.params, tmp_path), "-q all.q")
    assert description.native_specification == "-q all.q -pe smp 4 -l h_vmem=512M"


def test_slurm_native_arguments(tmp_path: Path) -> None:
    mapped = map_resources("slurm", Resources(cpu_cores=3, ram_gb=2, zones=("debug",)))
    args = _native_args(spec_for(mapped.params, tmp_path))
    assert args == ["--cpus-per-task=3", "--mem=2048M", "--partition=debug"]
