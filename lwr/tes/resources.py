"""TES resources as each manager's native submit options: pure functions, no scheduler needed.

A task's ``resources`` become the submit parameters LWR's managers already understand from Galaxy
(``submit_native_specification`` for Slurm, PBS and DRMAA/SGE, ``submit_request_*`` for HTCondor),
so the TES face adds nothing to any backend. What a backend cannot honour is a warning recorded
in the task's ``system_logs``; a ``backend_parameters`` key it does not support is dropped from
the stored task (the spec says such keys are neither stored nor returned), or refused with 400
when the task asked ``backend_parameters_strict``.

=========== ======================== =================== ============================
resource    Slurm (queued_cli)       SGE (DRMAA)         HTCondor
=========== ======================== =================== ============================
cpu_cores   ``--cpus-per-task=N``    ``-pe smp N``       ``request_cpus = N``
ram_gb      ``--mem=<MiB>M``         ``-l h_vmem=<MiB>M`` ``request_memory = <MiB>``
disk_gb     ``--tmp=<MiB>M``         (warning)           ``request_disk = <MiB>M``
zones       ``--partition=a,b``      ``-q a,b``          (warning)
=========== ======================== =================== ============================
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from lwr.errors import InvalidRequestError
from lwr.tes.models import Resources

#: backend_parameters keys each family accepts (case-insensitive), and what they become
BACKEND_PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "slurm": ("partition", "qos", "account", "time", "constraint", "gres"),
    "pbs": ("queue", "walltime", "account"),
    "sge": ("queue", "project", "h_rt", "pe"),
    "condor": ("request_gpus", "requirements", "rank", "universe"),
    "local": (),
}


@dataclass(frozen=True)
class Mapped:
    """Submit parameters for the job, warnings for the task log, and the keys kept."""

    params: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    kept_parameters: dict[str, str] = field(default_factory=dict)


def family(manager_type: str, job_plugin: str | None) -> str:
    """The resource family of a manager: slurm, pbs, sge, condor or local."""
    if manager_type == "queued_cli":
        plugin = (job_plugin or "").lower()
        return "slurm" if plugin == "slurm" else "pbs"
    if manager_type in ("queued_drmaa", "queued_external_drmaa"):
        return "sge"
    if manager_type == "queued_condor":
        return "condor"
    return "local"


def map_resources(kind: str, resources: Resources, default_native: str = "") -> Mapped:
    """The native form of ``resources`` for a manager of ``kind`` (see the module table)."""
    supported = BACKEND_PARAMETERS.get(kind, ())
    kept, warnings = _parameters(resources, supported)
    builder = {"slurm": _slurm, "pbs": _pbs, "sge": _sge, "condor": _condor}.get(kind)
    if builder is None:
        asked = _asked(resources)
        if asked:
            warnings.append(f"this manager runs tasks on the server's host: {asked} not enforced")
        return Mapped({}, tuple(warnings), kept)
    params, more = builder(resources, kept)
    if "submit_native_specification" in params and default_native:
        params["submit_native_specification"] = (
            f"{default_native} {params['submit_native_specification']}"
        )
    return Mapped(params, (*warnings, *more), kept)


def _parameters(
    resources: Resources, supported: tuple[str, ...]
) -> tuple[dict[str, str], list[str]]:
    kept: dict[str, str] = {}
    unsupported = []
    for key, value in resources.backend_parameters.items():
        if key.lower() in supported:
            kept[key.lower()] = value
        else:
            unsupported.append(key)
    if unsupported and resources.backend_parameters_strict:
        raise InvalidRequestError(
            f"backend_parameters not supported by this manager: {', '.join(sorted(unsupported))} "
            f"(supported: {', '.join(supported) or 'none'})"
        )
    warnings = [f"backend_parameters ignored (unsupported): {', '.join(sorted(unsupported))}"]
    return kept, warnings if unsupported else []


def _mib(gigabytes: float) -> int:
    return max(1, math.ceil(gigabytes * 1024))


def _slurm(resources: Resources, kept: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    args = []
    if resources.cpu_cores:
        args.append(f"--cpus-per-task={resources.cpu_cores}")
    if resources.ram_gb:
        args.append(f"--mem={_mib(resources.ram_gb)}M")
    if resources.disk_gb:
        args.append(f"--tmp={_mib(resources.disk_gb)}M")
    if resources.zones:
        args.append(f"--partition={','.join(resources.zones)}")
    args.extend(f"--{key}={value}" for key, value in kept.items())
    return _native(args), _preemptible(resources)


def _pbs(resources: Resources, kept: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    args = []
    if resources.cpu_cores:
        args += ["-l", f"nodes=1:ppn={resources.cpu_cores}"]
    if resources.ram_gb:
        args += ["-l", f"mem={_mib(resources.ram_gb)}mb"]
    if resources.zones:
        args += ["-q", resources.zones[0]]
    if "queue" in kept:
        args += ["-q", kept["queue"]]
    if "walltime" in kept:
        args += ["-l", f"walltime={kept['walltime']}"]
    if "account" in kept:
        args += ["-A", kept["account"]]
    warnings = ["disk_gb is not enforced by PBS here"] if resources.disk_gb else []
    return _native(args), warnings + _preemptible(resources)


def _sge(resources: Resources, kept: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    args = []
    if resources.cpu_cores:
        args += ["-pe", kept.get("pe", "smp"), str(resources.cpu_cores)]
    if resources.ram_gb:
        args += ["-l", f"h_vmem={_mib(resources.ram_gb)}M"]
    queues = [*resources.zones, *([kept["queue"]] if "queue" in kept else [])]
    if queues:
        args += ["-q", ",".join(queues)]
    if "project" in kept:
        args += ["-P", kept["project"]]
    if "h_rt" in kept:
        args += ["-l", f"h_rt={kept['h_rt']}"]
    warnings = ["disk_gb is not enforced by Grid Engine here"] if resources.disk_gb else []
    return _native(args), warnings + _preemptible(resources)


def _condor(resources: Resources, kept: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    params = {f"submit_{key}": value for key, value in kept.items()}
    if resources.cpu_cores:
        params["submit_request_cpus"] = str(resources.cpu_cores)
    if resources.ram_gb:
        params["submit_request_memory"] = str(_mib(resources.ram_gb))
    if resources.disk_gb:
        params["submit_request_disk"] = f"{_mib(resources.disk_gb)}M"
    warnings = ["zones are not used by HTCondor here"] if resources.zones else []
    return params, warnings + _preemptible(resources)


def _native(args: list[str]) -> dict[str, str]:
    return {"submit_native_specification": shlex.join(args)} if args else {}


def _preemptible(resources: Resources) -> list[str]:
    return ["preemptible has no meaning on this scheduler"] if resources.preemptible else []


def _asked(resources: Resources) -> str:
    asked = [
        name
        for name, value in (
            ("cpu_cores", resources.cpu_cores),
            ("ram_gb", resources.ram_gb),
            ("disk_gb", resources.disk_gb),
            ("zones", resources.zones),
        )
        if value
    ]
    return ", ".join(asked)
