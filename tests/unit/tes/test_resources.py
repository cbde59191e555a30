"""TES resources as native submit options of each scheduler family (pure, no cluster)."""

from __future__ import annotations

import shlex

import pytest

from lwr.errors import InvalidRequestError
from lwr.tes.models import Resources
from lwr.tes.resources import family, map_resources

FULL = Resources(
    cpu_cores=4,
    ram_gb=1.5,
    disk_gb=10,
    preemptible=True,
    zones=("short", "long"),
    backend_parameters={"QOS": "high", "VmSize": "big"},
)


def native(params: dict[str, str]) -> list[str]:
    return shlex.split(params["submit_native_specification"])


def test_family_of_each_manager_type() -> None:
    assert family("queued_cli", "slurm") == family("queued_cli", "Slurm") == "slurm"
    assert family("queued_cli", "torque") == "pbs"
    assert family("queued_drmaa", None) == family("queued_external_drmaa", None) == "sge"
    assert family("queued_condor", None) == "condor"
    assert family("queued_python", None) == family("unqueued", None) == "local"


def test_slurm() -> None:
    mapped = map_resources("slurm", FULL)
    assert native(mapped.params) == [
        "--cpus-per-task=4",
        "--mem=1536M",
        "--tmp=10240M",
        "--partition=short,long",
        "--qos=high",
    ]
    assert mapped.kept_parameters == {"qos": "high"}
    assert any("VmSize" in w for w in mapped.warnings)
    assert any("preemptible" in w for w in mapped.warnings)


def test_sge_keeps_the_manager_default_and_adds_resources() -> None:
    resources = Resources(cpu_cores=2, ram_gb=2, zones=("all.q",), backend_parameters={"pe": "mpi"})
    mapped = map_resources("sge", resources, default_native="-V")
    assert native(mapped.params) == ["-V", "-pe", "mpi", "2", "-l", "h_vmem=2048M", "-q", "all.q"]


def test_condor() -> None:
    mapped = map_resources(
        "condor",
        Resources(cpu_cores=3, ram_gb=0.5, disk_gb=1, backend_parameters={"request_gpus": "1"}),
    )
    assert mapped.params == {
        "submit_request_gpus": "1",
        "submit_request_cpus": "3",
        "submit_request_memory": "512",
        "submit_request_disk": "1024M",
    }


def test_pbs() -> None:
    mapped = map_resources(
        "pbs", Resources(cpu_cores=2, ram_gb=1, backend_parameters={"walltime": "1:00:00"})
    )
    assert native(mapped.params) == [
        "-l",
        "nodes=1:ppn=2",
        "-l",
        "mem=1024mb",
        "-l",
        "walltime=1:00:00",
    ]


def test_local_enforces_nothing_and_says_so() -> None:
    mapped = map_resources("local", Resources(cpu_cores=8))
    assert mapped.params == {} and "cpu_cores" in mapped.warnings[0]
    assert map_resources("local", Resources()).warnings == ()


@pytest.mark.parametrize("kind", ["slurm", "sge", "condor", "pbs", "local"])
def test_strict_unsupported_parameters_are_refused(kind: str) -> None:
    strict = Resources(backend_parameters={"VmSize": "x"}, backend_parameters_strict=True)
    with pytest.raises(InvalidRequestError, match="VmSize"):
        map_resources(kind, strict)


def test_a_value_is_one_argument_however_it_is_written() -> None:
    mapped = map_resources("slurm", Resources(backend_parameters={"partition": "a --wrap=evil"}))
    assert native(mapped.params) == ["--partition=a --wrap=evil"]
