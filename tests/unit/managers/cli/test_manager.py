"""CliManager over a shell that replays captured Slurm output: options, retries, state rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers.base import ActiveJob, JobState, LaunchSpec
from lwr.managers.cli.manager import CliManager
from lwr.managers.cli.schedulers.torque import Torque
from lwr.managers.cli.shells.local import LocalShell
from lwr.managers.cli.shells.ssh import SecureShell
from tests.unit.managers.cli.replay import ReplayShell, captured, data, result


def make(shell: ReplayShell, **options: str) -> CliManager:
    manager = CliManager("cluster", options)
    manager.shell = shell
    manager.sleep = lambda seconds: None
    return manager


def spec_in(tmp_path: Path, job_id: str = "7", **extra: object) -> LaunchSpec:
    job_dir = tmp_path / job_id
    job_dir.mkdir(exist_ok=True)
    return LaunchSpec(
        manager="cluster",
        job_id=job_id,
        attempt=0,
        job_directory=job_dir,
        working_directory=job_dir / "working",
        script=job_dir / "command.sh",
        **extra,
    )  # type: ignore[arg-type]


def test_defaults_are_slurm_over_the_local_shell() -> None:
    manager = CliManager("c", {})
    assert type(manager.scheduler).__name__ == "Slurm"
    assert isinstance(manager.shell, LocalShell)
    assert manager.max_concurrent_jobs is None
    assert manager.poll_interval == 5.0


def test_aliases_of_the_original_sample_resolve() -> None:
    manager = CliManager(
        "c",
        {
            "job_plugin": "Torque",
            "shell_plugin": "SecureShell",
            "shell_hostname": "submit",
            "min_polling_interval": "2",
        },
    )
    assert isinstance(manager.scheduler, Torque)
    assert isinstance(manager.shell, SecureShell)
    assert manager.poll_interval == 2.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"job_plugin": "slurmm"}, "did you mean 'slurm'"),
        ({"shell_plugin": "rsh"}, "unknown shell_plugin"),
        ({"command_timeout": "soon"}, "command_timeout must be a number"),
        ({"command_retries": "-1"}, "command_retries must be at least 0"),
        ({"command_retries": "1.5"}, "must be an integer"),
        ({"job_name": "mine"}, "job_name cannot be configured"),
        ({"shell_hostname": "h"}, "belong to shell_plugin = ssh"),
        ({"submit_host": "h"}, "unknown option"),
    ],
)
def test_bad_options_fail_at_start_up(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CliManager("c", options)


def test_launch_passes_name_directives_and_native_specification(
    shell: ReplayShell, tmp_path: Path
) -> None:
    shell.reply("sbatch", result(data("slurm/sbatch_parsable.txt")))
    manager = make(shell, job_partition="debug", job_time="10")
    spec = spec_in(tmp_path, submit_params={"submit_native_specification": "--mem=200 --qos='a b'"})
    assert manager.launch(spec) == data("slurm/sbatch_parsable.txt").strip()
    (argv,) = shell.calls
    assert argv[:3] == ["sbatch", "--parsable", "--job-name=lwr-cluster-7-0"]
    assert f"--output={spec.job_directory}/scheduler.out" in argv
    assert argv[-5:] == [
        "--partition=debug",
        "--time=10",
        "--mem=200",
        "--qos=a b",
        str(spec.script),
    ]


def test_launch_uses_the_spec_native_specification_as_fallback(
    shell: ReplayShell, tmp_path: Path
) -> None:
    shell.reply("sbatch", result("12\n"))
    make(shell).launch(spec_in(tmp_path, native_specification="-p big"))
    assert shell.calls[0][-3:-1] == ["-p", "big"]


def test_refused_submit_is_retried_then_raises_with_what_sbatch_said(
    shell: ReplayShell, tmp_path: Path
) -> None:
    returncode, stdout, stderr = captured("slurm/sbatch_bad_partition")
    shell.reply("sbatch", result(stdout, returncode, stderr))
    shell.reply("squeue", result(data("slurm/squeue_by_name_none.txt")))
    manager = make(shell, command_retries="2")
    with pytest.raises(SubmitError) as caught:
        manager.launch(spec_in(tmp_path))
    error = caught.value
    assert error.returncode == 1 and "invalid partition" in error.stderr
    assert error.argv[0] == "sbatch" and "after 3 attempts" in str(error)
    # before each retry it looked for a job that a lost answer might hide
    assert shell.programs() == ["sbatch", "squeue", "sbatch", "squeue", "sbatch"]


def test_a_timed_out_submit_that_reached_slurm_is_not_submitted_twice(
    shell: ReplayShell, tmp_path: Path
) -> None:
    shell.reply("sbatch", SubmitError("command timed out after 30 s", argv=["sbatch"]))
    shell.reply("squeue", result("41|PENDING|Priority|lwr-cluster-7-0\n"))
    assert make(shell).launch(spec_in(tmp_path)) == "41"
    assert shell.programs() == ["sbatch", "squeue"]


def test_backoff_doubles(shell: ReplayShell) -> None:
    shell.reply("squeue", result("", 1, "slurm_load_jobs error: Socket timed out"))
    manager = make(shell, command_retries="3", command_retry_delay="0.5")
    waits: list[float] = []
    manager.sleep = waits.append
    with pytest.raises(SubmitError, match="Socket timed out"):
        manager.find_orphan(_spec_nowhere())
    assert waits == [0.5, 1.0, 2.0]


def _spec_nowhere() -> LaunchSpec:
    here = Path("/nonexistent-lwr")
    return LaunchSpec("cluster", "1", 0, here, here, here / "command.sh")


def active(spec: LaunchSpec, external_id: str) -> ActiveJob:
    return ActiveJob(spec=spec, external_id=external_id)


def test_poll_maps_a_captured_mixed_listing(shell: ReplayShell, tmp_path: Path) -> None:
    listing = data("slurm/squeue_mixed.txt")
    shell.reply("squeue", result(listing))
    rows = {line.split("|")[3]: line.split("|")[0] for line in listing.splitlines()}
    jobs = {name: active(spec_in(tmp_path, name), job_id) for name, job_id in rows.items()}
    for name in ("lwr-capture-ok", "lwr-capture-fail"):  # their job scripts ran to the end
        (jobs[name].spec.job_directory / "return_code").write_text("0\n")
    statuses = make(shell).poll(list(jobs.values()))
    by_name = {name: statuses[job.external_id] for name, job in jobs.items()}
    assert by_name["lwr-capture-ok"].state is JobState.COMPLETE
    assert by_name["lwr-capture-ok"].reason is None
    assert by_name["lwr-capture-fail"].state is JobState.COMPLETE
    broken = by_name["lwr-capture-broken"]
    assert broken.state is JobState.COMPLETE and broken.native_state == "FAILED"
    assert "recorded no return code" in (broken.reason or "")
    assert by_name["lwr-capture-held"].state is JobState.QUEUED
    assert by_name["lwr-capture-wait"].state is JobState.QUEUED
    assert by_name["lwr-capture-busy"].state is JobState.RUNNING
    assert len(shell.calls) == 1 and shell.calls[0][:2] == ["squeue", "-h"]


def test_poll_of_a_timed_out_job_fails_with_slurms_words(
    shell: ReplayShell, tmp_path: Path
) -> None:
    shell.reply("squeue", result(data("slurm/squeue_timeout.txt")))
    job_id = data("slurm/squeue_timeout.txt").split("|")[0]
    status = make(shell).poll([active(spec_in(tmp_path), job_id)])[job_id]
    assert status.state is JobState.FAILED and status.native_state == "TIMEOUT"
    assert status.reason == f"Slurm ended job {job_id}: TIMEOUT (TimeLimit)"


def test_cancelled_is_ours_only_if_we_cancelled_it(shell: ReplayShell, tmp_path: Path) -> None:
    listing = data("slurm/squeue_cancelled_running.txt")
    job_id = listing.split("|")[0]
    shell.reply("squeue", result(listing))
    shell.reply("scancel", result())
    manager = make(shell)
    job = active(spec_in(tmp_path), job_id)
    behind_our_back = manager.poll([job])[job_id]
    assert behind_our_back.state is JobState.FAILED
    assert "cancelled outside LWR" in (behind_our_back.reason or "")
    manager.cancel(job)
    assert manager.poll([job])[job_id].state is JobState.CANCELLED


def test_a_job_that_left_the_listing_is_judged_by_its_return_code(
    shell: ReplayShell, tmp_path: Path
) -> None:
    returncode, stdout, stderr = captured("slurm/squeue_unknown_id")
    shell.reply("squeue", result(stdout, returncode, stderr))
    manager = make(shell)
    finished, vanished = (
        active(spec_in(tmp_path, "1"), "101"),
        active(spec_in(tmp_path, "2"), "102"),
    )
    (finished.spec.job_directory / "return_code").write_text("0\n")
    statuses = manager.poll([finished, vanished])
    assert statuses["101"].state is JobState.COMPLETE
    assert statuses["102"].state is JobState.LOST
    assert statuses["102"].reason == "scheduler no longer knows job 102"


def test_poll_raises_when_squeue_keeps_failing(shell: ReplayShell, tmp_path: Path) -> None:
    shell.reply(
        "squeue", result("", 1, "slurm_load_jobs error: Unable to contact slurm controller")
    )
    with pytest.raises(SubmitError, match="Unable to contact"):
        make(shell, command_retries="1").poll([active(spec_in(tmp_path), "5")])
    assert len(shell.calls) == 2


def test_poll_batches_many_jobs(shell: ReplayShell, tmp_path: Path) -> None:
    shell.reply("squeue", result(""))
    spec = spec_in(tmp_path)
    make(shell).poll([active(spec, str(n)) for n in range(450)])
    assert [len(call[5].split(",")) for call in shell.calls] == [200, 200, 50]
    assert make(shell).poll([]) == {}


def test_cancel_of_a_finished_job_is_quiet(shell: ReplayShell, tmp_path: Path) -> None:
    shell.reply(
        "scancel",
        result("", 1, "scancel: error: Kill job error on job id 5: Invalid job id specified\n"),
    )
    make(shell).cancel(active(spec_in(tmp_path), "5"))
    assert shell.calls == [["scancel", "5"]]


def test_find_orphan_returns_the_newest_job_of_that_name(
    shell: ReplayShell, tmp_path: Path
) -> None:
    listing = data("slurm/squeue_by_name.txt").replace("lwr-capture-held", "lwr-cluster-7-0")
    shell.reply("squeue", result(listing))
    expected = max((line.split("|")[0] for line in listing.splitlines()), key=int)
    assert make(shell).find_orphan(spec_in(tmp_path)) == expected
    none = ReplayShell()
    none.reply("squeue", result(data("slurm/squeue_by_name_none.txt")))
    assert make(none).find_orphan(spec_in(tmp_path)) is None
