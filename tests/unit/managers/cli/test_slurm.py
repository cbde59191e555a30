"""The Slurm plugin against output captured from a real Slurm 22.05 (tests/data/cli/slurm)."""

from __future__ import annotations

import logging

import pytest

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers.base import JobState
from lwr.managers.cli.schedulers.slurm import SQUEUE_FORMAT, STATES, Slurm
from lwr.managers.cli.shells.base import CommandResult
from tests.unit.managers.cli.replay import DATA, captured, data

slurm = Slurm()


def only(stdout: str) -> tuple[str, JobState, str, str | None]:
    """The single job of a squeue listing as (id, state, native, detail)."""
    statuses = slurm.parse_status(stdout)
    assert len(statuses) == 1
    ((job_id, status),) = statuses.items()
    return job_id, status.state, status.native_state, status.detail


def test_capture_script_uses_the_parsers_format() -> None:
    assert f"FMT='{SQUEUE_FORMAT}'" in (DATA / "slurm" / "capture.sh").read_text()


def test_submit_argv_names_the_job_and_keeps_output_in_the_job_directory() -> None:
    argv = slurm.submit_argv("/jobs/1/command.sh", "lwr-main-1-0", {}, output_dir="/jobs/1/")
    assert argv == [
        "sbatch",
        "--parsable",
        "--job-name=lwr-main-1-0",
        "--output=/jobs/1/scheduler.out",
        "--error=/jobs/1/scheduler.err",
        "/jobs/1/command.sh",
    ]


def test_directives_become_sbatch_options_before_native_arguments() -> None:
    directives = {
        "partition": "debug",
        "time": "0:10:00",
        "hold": "true",
        "requeue": "false",
        "mail_type": "END",
        "c": "2",
        "exclusive": "",
    }
    argv = slurm.submit_argv("/s.sh", "n", directives, native_args=["--mem=100", "--qos=low"])
    assert argv[3:] == [
        "-c", "2",
        "--exclusive",
        "--hold",
        "--mail-type=END",
        "--partition=debug",
        "--time=0:10:00",
        "--mem=100",
        "--qos=low",
        "/s.sh",
    ]  # fmt: skip


@pytest.mark.parametrize("key", ["name", "job_name", "output", "error", "wrap", "parsable"])
def test_directives_lwr_controls_are_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match=f"job_{key}"):
        slurm.check_directives({key: "x"})


def test_parse_submit_reads_captured_parsable_output() -> None:
    assert slurm.parse_submit(data("slurm/sbatch_parsable.txt")).isdigit()
    assert slurm.parse_submit("4711;cluster2\n") == "4711"


@pytest.mark.parametrize("stdout", ["", "Submitted batch job 12\n", "sbatch: warning\n"])
def test_parse_submit_refuses_output_without_an_id(stdout: str) -> None:
    with pytest.raises(SubmitError, match="no job id"):
        slurm.parse_submit(stdout)


def test_status_argv_asks_for_all_states_in_one_call() -> None:
    assert slurm.status_argv(["5", "6"]) == [
        "squeue", "-h", "-t", "all", "-j", "5,6", "-o", SQUEUE_FORMAT,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "state", "native", "detail"),
    [
        ("pending_held", JobState.QUEUED, "PENDING", "JobHeldUser"),
        ("pending_resources", JobState.QUEUED, "PENDING", "Resources"),
        ("running", JobState.RUNNING, "RUNNING", None),
        ("completed", JobState.COMPLETE, "COMPLETED", None),
        ("completed_nonzero_command", JobState.COMPLETE, "COMPLETED", None),
        ("failed", JobState.COMPLETE, "FAILED", "NonZeroExitCode"),
        ("timeout", JobState.FAILED, "TIMEOUT", "TimeLimit"),
        ("cancelled_pending", JobState.CANCELLED, "CANCELLED", "JobHeldUser"),
        ("cancelled_running", JobState.CANCELLED, "CANCELLED", None),
        ("cancelled_while_terminating", JobState.CANCELLED, "CANCELLED", None),
    ],
)
def test_parse_status_of_each_captured_state(
    name: str, state: JobState, native: str, detail: str | None
) -> None:
    _, got_state, got_native, got_detail = only(data(f"slurm/squeue_{name}.txt"))
    assert (got_state, got_native, got_detail) == (state, native, detail)


def test_parse_status_of_a_mixed_listing_keeps_every_job() -> None:
    statuses = slurm.parse_status(data("slurm/squeue_mixed.txt"))
    assert len(statuses) == 7
    natives = sorted(status.native_state for status in statuses.values())
    assert natives == [
        "COMPLETED",
        "COMPLETED",
        "FAILED",
        "PENDING",
        "PENDING",
        "RUNNING",
        "RUNNING",
    ]


@pytest.mark.parametrize(
    ("line", "state"),
    [
        ("7|OUT_OF_MEMORY|OutOfMemory|lwr-x", JobState.FAILED),
        ("7|NODE_FAIL|NodeDown|lwr-x", JobState.LOST),
        ("7|PREEMPTED|None|lwr-x", JobState.FAILED),
        ("7|COMPLETING|None|lwr-x", JobState.RUNNING),
        ("7|REQUEUE_HOLD|JobHeldAdmin|lwr-x", JobState.QUEUED),
    ],
)
def test_parse_status_of_states_this_machine_cannot_produce(line: str, state: JobState) -> None:
    assert only(line + "\n")[1] is state


def test_an_unknown_state_is_logged_and_treated_as_still_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        assert only("9|TELEPORTED|None|lwr-x\n")[1] is JobState.RUNNING
    assert "TELEPORTED" in caplog.text


def test_malformed_lines_are_skipped_and_names_may_hold_the_separator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        statuses = slurm.parse_status("garbage\n\n8|RUNNING|None|a|b\n")
    assert list(statuses) == ["8"]
    assert "garbage" in caplog.text


def test_every_mapped_state_is_a_job_state() -> None:
    assert all(isinstance(state, JobState) for state in STATES.values())
    assert not any(state in (JobState.SETUP, JobState.PREPROCESSING) for state in STATES.values())


def test_unknown_id_error_is_an_empty_answer() -> None:
    returncode, stdout, stderr = captured("slurm/squeue_unknown_id")
    assert returncode != 0
    assert slurm.status_error_is_benign(CommandResult((), returncode, stdout, stderr))
    assert slurm.parse_status(stdout) == {}
    assert not slurm.status_error_is_benign(
        CommandResult((), 1, "", "slurm_load_jobs error: Unable to contact slurm controller")
    )


def test_refused_submit_keeps_what_sbatch_said() -> None:
    returncode, _, stderr = captured("slurm/sbatch_bad_partition")
    assert returncode == 1
    assert "invalid partition" in stderr


def test_scancel_of_finished_and_unknown_jobs_succeeds() -> None:
    assert data("slurm/scancel_finished.returncode.txt").strip() == "0"
    assert data("slurm/scancel_unknown.returncode.txt").strip() == "0"
    assert slurm.cancel_argv("12") == ["scancel", "12"]
    older = CommandResult(
        (),
        1,
        "",
        "scancel: error: Kill job error on job id 12: Job/step already completing or completed\n",
    )
    assert slurm.cancel_error_is_benign(older)


def test_find_lists_only_exact_names_oldest_first() -> None:
    assert slurm.find_argv("lwr-a-1-0")[:5] == ["squeue", "-h", "-t", "all", "--name=lwr-a-1-0"]
    ids = slurm.parse_find(data("slurm/squeue_by_name.txt"), "lwr-capture-held")
    assert len(ids) >= 1
    assert ids == sorted(ids, key=int)
    assert slurm.parse_find(data("slurm/squeue_by_name.txt"), "lwr-capture") == []
    assert slurm.parse_find(data("slurm/squeue_by_name_none.txt"), "x") == []
