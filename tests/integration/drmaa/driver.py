"""Scenarios that drive the DRMAA managers against a real SGE, run in a child interpreter.

libdrmaa can only be loaded by a Python that started with ``GLIBC_TUNABLES`` in its environment,
so ``tests/integration/test_drmaa_sge.py`` runs each scenario here with the environment from
``scripts/services/sge.env`` and checks the JSON this prints. Usage:
``python -m tests.integration.drmaa.driver SCENARIO WORKDIR [USER HELPER_PYTHON]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec
from lwr.managers.drmaa import DrmaaManager, ExternalDrmaaManager

WAIT = 90.0

SCRIPT = """#!/bin/bash
cd {work} || exit 1
( {command} ) > {job}/stdout 2> {job}/stderr
rc=$?
echo "$rc" > {job}/return_code.tmp && mv {job}/return_code.tmp {job}/return_code
"""


def make_spec(root: Path, job_id: str, command: str, **extra: str) -> LaunchSpec:
    """Lay out a job directory the way the core does and write a contract-following script."""
    job_dir = root / job_id
    work = job_dir / "working"
    work.mkdir(parents=True)
    script = job_dir / "command.sh"
    script.write_text(SCRIPT.format(work=work, job=job_dir, command=command))
    script.chmod(0o755)
    return LaunchSpec("sge", job_id, 1, job_dir, work, script, **extra)


def wait_for(
    manager: DrmaaManager, job: ActiveJob, done: Callable[[ExternalStatus], bool]
) -> ExternalStatus:
    """Poll until ``done`` holds (bounded: a stuck job fails the scenario, never hangs it)."""
    deadline = time.monotonic() + WAIT
    while True:
        status = manager.poll([job])[job.external_id]
        if done(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def in_qstat(external_id: str) -> bool:
    """True while SGE still lists the job."""
    result = subprocess.run(["qstat", "-j", external_id], capture_output=True, timeout=15)
    return result.returncode == 0


def wait_gone(external_id: str) -> bool:
    """Wait until SGE has forgotten the job; False if it is still there after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while in_qstat(external_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def describe(status: ExternalStatus, spec: LaunchSpec) -> dict[str, object]:
    """The facts a test checks about a finished job."""
    rc_file = spec.job_directory / "return_code"
    out_file = spec.job_directory / "stdout"
    return {
        "state": status.state.value,
        "native": status.native_state,
        "reason": status.reason,
        "return_code": rc_file.read_text().strip() if rc_file.exists() else None,
        "stdout": out_file.read_text() if out_file.exists() else None,
    }


def final(status: ExternalStatus) -> bool:
    return status.state.is_final


def run_to_end(manager: DrmaaManager, spec: LaunchSpec) -> dict[str, object]:
    job = ActiveJob(spec, manager.launch(spec))
    return {"external_id": job.external_id, **describe(wait_for(manager, job, final), spec)}


def cancel_queued(manager: DrmaaManager, root: Path) -> dict[str, object]:
    spec = make_spec(root, "held", "echo never", native_specification="-h")
    job = ActiveJob(spec, manager.launch(spec))
    queued = manager.poll([job])[job.external_id]
    orphan = manager.find_orphan(spec)
    manager.cancel(job)
    after = wait_for(manager, job, final)
    return {
        "queued": queued.state.value,
        "native": queued.native_state,
        "orphan_found": orphan == job.external_id,
        "gone": wait_gone(job.external_id),
        "after": after.state.value,
    }


def cancel_running(manager: DrmaaManager, root: Path) -> dict[str, object]:
    spec = make_spec(root, "sleeper", "sleep 300")
    job = ActiveJob(spec, manager.launch(spec))
    running = wait_for(manager, job, lambda s: s.state is not JobState.QUEUED)
    manager.cancel(job)
    return {"running": running.state.value, "gone": wait_gone(job.external_id)}


def scenario_basic(root: Path, *_: str) -> dict[str, object]:
    """Exit 0, exit 3, cancels of a held and a running job, with one manager."""
    manager = DrmaaManager("sge", {"native_specification": "-q all.q"})
    try:
        return {
            "ok": run_to_end(manager, make_spec(root, "ok", "echo hello")),
            "fail": run_to_end(manager, make_spec(root, "fail", "echo bad >&2; exit 3")),
            "cancel_queued": cancel_queued(manager, root),
            "cancel_running": cancel_running(manager, root),
        }
    finally:
        manager.shutdown()


def scenario_launch_only(root: Path, *_: str) -> dict[str, object]:
    """Launch two jobs and wait until SGE forgets them, so a *new* session must judge them."""
    manager = DrmaaManager("sge", {})
    with_rc = make_spec(root, "with_rc", "true")
    no_rc = make_spec(root, "no_rc", "true")
    no_rc.script.write_text("#!/bin/bash\nexit 0\n")  # breaks the contract: no return_code
    ids = {"with_rc": manager.launch(with_rc), "no_rc": manager.launch(no_rc)}
    manager.shutdown()
    return {"ids": ids, "gone": all(wait_gone(i) for i in ids.values())}


def scenario_forgotten(root: Path, *_: str) -> dict[str, object]:
    """Poll the jobs of scenario_launch_only from a fresh session (as after an LWR restart)."""
    ids = json.loads((root / "ids.json").read_text())
    manager = DrmaaManager("sge", {})
    result = {}
    for name, external_id in ids.items():
        spec = LaunchSpec("sge", name, 1, root / name, root / name / "working", root / name / "x")
        status = manager.poll([ActiveJob(spec, external_id)])[external_id]
        result[name] = {"state": status.state.value, "reason": status.reason}
    manager.shutdown()
    return result


def scenario_external(root: Path, user: str, python: str) -> dict[str, object]:
    """Run one job as ``user`` through sudo, and cancel another one as them.

    ``python`` runs the helpers: an interpreter the job's user can execute (see sge_env).
    """
    options = {
        "production": "true",
        "drmaa_launch_script": f"{python} -I -m lwr.scripts.drmaa_launch",
        "drmaa_kill_script": f"{python} -I -m lwr.scripts.drmaa_kill",
    }
    manager = ExternalDrmaaManager("ext", options)
    try:
        spec = make_spec(root, "whoami", "id -un > whoami.txt", user=user)
        result = run_to_end(manager, spec)
        whoami = spec.working_directory / "whoami.txt"
        result["whoami"] = whoami.read_text().strip() if whoami.exists() else None
        result["owner_after"] = spec.job_directory.stat().st_uid
        sleeper = make_spec(root, "sleeper", "sleep 300", user=user)
        job = ActiveJob(sleeper, manager.launch(sleeper))
        owner_before = sleeper.job_directory.stat().st_uid
        wait_for(manager, job, lambda s: s.state is not JobState.QUEUED)
        manager.cancel(job)
        result["cancel"] = {"owner_while_running": owner_before, "gone": wait_gone(job.external_id)}
        return result
    finally:
        manager.shutdown()


SCENARIOS = {
    "basic": scenario_basic,
    "launch_only": scenario_launch_only,
    "forgotten": scenario_forgotten,
    "external": scenario_external,
}


def main() -> int:
    name, root, *rest = sys.argv[1:]
    sys.stdout.write(json.dumps(SCENARIOS[name](Path(root), *rest)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
