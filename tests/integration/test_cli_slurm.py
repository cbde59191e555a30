"""CliManager against the real one-node Slurm, over the local shell and over ssh to localhost.

Start the services first: ``bash scripts/services/slurm-up.sh`` and
``eval "$(bash scripts/services/sshd-up.sh)"``. A job hitting its one-minute time limit is
started as soon as the module begins and checked by the last test, so that minute overlaps the
other tests instead of adding to them.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.errors import SubmitError
from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec
from lwr.managers.cli.manager import CliManager
from tests.conftest import require_service
from tests.integration.cli.services import slurm_problem, ssh_problem, ssh_settings

pytestmark = [pytest.mark.integration, pytest.mark.slurm]

FAST = {"command_timeout": "20", "command_retries": "1", "command_retry_delay": "0.2"}


def write_job(job_dir: Path, command: str) -> LaunchSpec:
    """A job directory whose script keeps the core's contract (stdout, stderr, return_code)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    working = job_dir / "working"
    working.mkdir(exist_ok=True)
    script = job_dir / "command.sh"
    q = shlex.quote
    script.write_text(
        "#!/bin/bash\n"
        f"cd {q(str(working))} || exit 1\n"
        f"( {command} ) > {q(str(job_dir / 'stdout'))} 2> {q(str(job_dir / 'stderr'))}\n"
        f"echo $? > {q(str(job_dir / 'return_code.tmp'))}\n"
        f"mv {q(str(job_dir / 'return_code.tmp'))} {q(str(job_dir / 'return_code'))}\n"
    )
    script.chmod(0o755)
    return LaunchSpec(
        manager="clitest",
        job_id=uuid.uuid4().hex[:12],
        attempt=0,
        job_directory=job_dir,
        working_directory=working,
        script=script,
    )


def wait_for(
    manager: CliManager, job: ActiveJob, wanted: JobState, timeout: float = 60
) -> ExternalStatus:
    """Poll until the job reaches ``wanted``; fail on another final state or on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        status = manager.poll([job])[job.external_id]
        if status.state is wanted:
            return status
        assert not status.state.is_final, f"job ended as {status}, expected {wanted.value}"
        assert time.monotonic() < deadline, f"job still {status} after {timeout} s"
        time.sleep(0.3)


def slurm_active(external_id: str) -> bool:
    """True while Slurm still lists the job as pending, running or completing."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "PD,R,CG,S", "-j", external_id, "-o", "%i"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return bool(out.stdout.strip())


@pytest.fixture(scope="module")
def slurm() -> None:
    problem = slurm_problem()
    require_service(problem is None, problem or "")


@pytest.fixture(scope="module", params=["local", pytest.param("ssh", marks=pytest.mark.sshd)])
def shell_options(request: pytest.FixtureRequest, slurm: None) -> dict[str, str]:
    """The shell part of a manager section: the local shell, or ssh to the test sshd."""
    if request.param == "local":
        return {"shell_plugin": "local"}
    settings = ssh_settings()
    problem = ssh_problem(settings)
    require_service(problem is None, problem or "")
    assert settings is not None
    return {
        "shell_plugin": "ssh",
        "shell_hostname": settings["HOST"],
        "shell_port": settings["PORT"],
        "shell_username": settings["USER"],
        "shell_private_key": settings["KEY"],
        "shell_known_hosts": settings["KNOWN_HOSTS"],
    }


class Cluster:
    """Builds managers on one shell and remembers every job they launch, for clean-up."""

    def __init__(self, shell_options: dict[str, str]) -> None:
        self.shell_options = shell_options
        self.launched: list[str] = []

    def manager(self, **options: str) -> CliManager:
        """A Slurm manager on this shell with fast retries and the given extra options."""
        return CliManager(
            "clitest", {"job_plugin": "slurm", **FAST, **self.shell_options, **options}
        )

    def launch(self, manager: CliManager, spec: LaunchSpec) -> ActiveJob:
        """Launch ``spec`` and remember its id."""
        external_id = manager.launch(spec)
        self.launched.append(external_id)
        return ActiveJob(spec=spec, external_id=external_id)


@pytest.fixture
def cluster(shell_options: dict[str, str]) -> Iterator[Cluster]:
    """A Cluster on the chosen shell; whatever its jobs left in Slurm is cancelled afterwards."""
    made = Cluster(shell_options)
    yield made
    if made.launched:
        subprocess.run(["scancel", *made.launched], capture_output=True, timeout=20)


@pytest.fixture(scope="module")
def time_limited(slurm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActiveJob]:
    """A job with a one-minute limit that sleeps for ten, launched when the module starts."""
    manager = CliManager("clitest", {"job_time": "1", **FAST})
    spec = write_job(tmp_path_factory.mktemp("timeout"), "sleep 600")
    job = ActiveJob(spec=spec, external_id=manager.launch(spec))
    yield job
    subprocess.run(["scancel", job.external_id], capture_output=True, timeout=20)


@pytest.fixture(scope="module", autouse=True)
def start_time_limited_job_first(request: pytest.FixtureRequest) -> None:
    """Start the time-limited job before anything else, if its test was selected."""
    if any(item.name.startswith("test_time_limit") for item in request.session.items):
        request.getfixturevalue("time_limited")


def test_job_completes_and_records_its_output(cluster: Cluster, tmp_path: Path) -> None:
    manager = cluster.manager()
    spec = write_job(tmp_path / "job", "echo hello from $(pwd); echo oops >&2")
    job = cluster.launch(manager, spec)
    assert job.external_id.isdigit()
    status = wait_for(manager, job, JobState.COMPLETE)
    assert status.reason is None and status.native_state == "COMPLETED"
    assert (spec.job_directory / "return_code").read_text().strip() == "0"
    assert (spec.job_directory / "stdout").read_text() == f"hello from {spec.working_directory}\n"
    assert (spec.job_directory / "stderr").read_text() == "oops\n"
    assert (spec.job_directory / "scheduler.out").exists()


def test_non_zero_exit_is_recorded_not_failed_by_the_manager(
    cluster: Cluster, tmp_path: Path
) -> None:
    manager = cluster.manager()
    spec = write_job(tmp_path / "job", "exit 7")
    job = cluster.launch(manager, spec)
    assert wait_for(manager, job, JobState.COMPLETE).reason is None
    assert (spec.job_directory / "return_code").read_text().strip() == "7"


def test_a_script_that_dies_early_completes_with_a_reason(cluster: Cluster, tmp_path: Path) -> None:
    manager = cluster.manager()
    spec = write_job(tmp_path / "job", "true")
    spec.script.write_text("#!/bin/bash\nexit 3\n")  # never writes return_code
    status = wait_for(manager, cluster.launch(manager, spec), JobState.COMPLETE)
    assert status.native_state == "FAILED"
    assert "recorded no return code" in (status.reason or "")


def test_cancel_of_a_queued_job(cluster: Cluster, tmp_path: Path) -> None:
    manager = cluster.manager(job_hold="true")
    spec = write_job(tmp_path / "job", "echo should never run")
    job = cluster.launch(manager, spec)
    assert wait_for(manager, job, JobState.QUEUED).native_state == "PENDING"
    manager.cancel(job)
    status = wait_for(manager, job, JobState.CANCELLED, timeout=30)
    assert status.native_state == "CANCELLED"
    assert not (spec.job_directory / "return_code").exists()
    manager.cancel(job)  # again, now that it is over: no error


def test_cancel_of_a_running_job(cluster: Cluster, tmp_path: Path) -> None:
    manager = cluster.manager()
    spec = write_job(tmp_path / "job", "sleep 300")
    job = cluster.launch(manager, spec)
    wait_for(manager, job, JobState.RUNNING)
    manager.cancel(job)
    wait_for(manager, job, JobState.CANCELLED, timeout=30)
    deadline = time.monotonic() + 30
    while slurm_active(job.external_id):
        assert time.monotonic() < deadline, "cancelled job still active in squeue"
        time.sleep(0.3)
    # scancel signals the script and its command together: the command never finishes, but the
    # script may or may not live long enough to record the signal death (a loaded machine)
    code = spec.job_directory / "return_code"
    assert not code.exists() or int(code.read_text()) > 128, code.read_text()


def test_find_orphan_by_name(cluster: Cluster, tmp_path: Path) -> None:
    manager = cluster.manager(job_hold="true")
    spec = write_job(tmp_path / "job", "true")
    job = cluster.launch(manager, spec)
    assert manager.find_orphan(spec) == job.external_id
    never_launched = write_job(tmp_path / "other", "true")
    assert manager.find_orphan(never_launched) is None
    manager.cancel(job)


def test_refused_submit_keeps_slurms_complaint(cluster: Cluster, tmp_path: Path) -> None:
    manager = cluster.manager(job_partition="nosuchpartition", command_retries="0")
    with pytest.raises(SubmitError) as caught:
        manager.launch(write_job(tmp_path / "job", "true"))
    assert caught.value.returncode == 1
    assert "invalid partition" in caught.value.stderr.lower()
    assert caught.value.argv[0] == "sbatch"


def test_time_limit_fails_the_job(time_limited: ActiveJob) -> None:
    """Slurm's smallest limit is one minute; it is enforced within about 30 s after that."""
    manager = CliManager("clitest", FAST)
    status = wait_for(manager, time_limited, JobState.FAILED, timeout=150)
    assert status.native_state == "TIMEOUT"
    assert "TIMEOUT (TimeLimit)" in (status.reason or "")
    assert not (time_limited.spec.job_directory / "return_code").exists()
