"""The Torque and PBS plugins against hand-written ``qstat -f`` samples (tests/data/cli/torque)."""

from __future__ import annotations

import pytest

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers.base import JobState
from lwr.managers.cli.schedulers.torque import Pbs, Torque, parse_qstat_full
from lwr.managers.cli.shells.base import CommandResult
from tests.unit.managers.cli.replay import data

torque = Torque()
pbs = Pbs()


def test_submit_argv_maps_directives_to_qsub_flags() -> None:
    directives = {
        "queue": "batch",
        "walltime": "01:00:00",
        "nodes": "1:ppn=4",
        "group_list": "galaxy",
        "hold": "true",
        "account": "false",
    }
    argv = torque.submit_argv(
        "/j/1/command.sh", "lwr-main-1-0", directives, native_args=["-V"], output_dir="/j/1"
    )
    assert argv == [
        "qsub", "-N", "lwr-main-1-0",
        "-o", "/j/1/scheduler.out", "-e", "/j/1/scheduler.err",
        "-W", "group_list=galaxy",
        "-h",
        "-l", "nodes=1:ppn=4",
        "-q", "batch",
        "-l", "walltime=01:00:00",
        "-V",
        "/j/1/command.sh",
    ]  # fmt: skip


def test_reserved_directives_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="job_N"):
        torque.check_directives({"N": "other"})


def test_parse_submit() -> None:
    assert torque.parse_submit(data("torque/qsub.txt")) == "1234.pbs.example.org"
    assert pbs.parse_submit(data("pbs/qsub.txt")) == "4321.pbspro"
    with pytest.raises(SubmitError):
        torque.parse_submit("qsub: submit error (Unknown queue)\n")


def test_parse_qstat_full_joins_wrapped_values() -> None:
    jobs = parse_qstat_full(data("torque/qstat_f_mixed.txt"))
    first = jobs["1234.pbs.example.org"]
    assert first["job_name"] == "lwr-main-17-0"
    assert first["variable_list"].endswith(
        "PBS_O_HOST=submit.example.org,PBS_O_SERVER=pbs.example.org"
    )
    assert "PBS_O_LOGNAME=galaxy," in first["variable_list"]
    assert first["submit_args"].endswith(
        "-e /data/lwr/staging/17/scheduler.err /data/lwr/staging/17/command.sh"
    )
    pro = parse_qstat_full(data("pbs/qstat_fx_mixed.txt"))["4321.pbspro"]
    assert " -e /data/lwr/staging/30/scheduler.err" in pro["submit_arguments"]


@pytest.mark.parametrize(
    ("job_id", "state", "native", "detail"),
    [
        ("1234.pbs.example.org", JobState.COMPLETE, "C", "exit_status 0"),
        ("1235.pbs.example.org", JobState.QUEUED, "Q", None),
        ("1236.pbs.example.org", JobState.RUNNING, "R", None),
        ("1237.pbs.example.org", JobState.QUEUED, "H", None),
        ("1238.pbs.example.org", JobState.FAILED, "C", "exit_status -11: walltime limit exceeded"),
        ("1239.pbs.example.org", JobState.FAILED, "C", "exit_status 271: killed by signal 15"),
        ("1240.pbs.example.org", JobState.RUNNING, "E", None),
        ("1241.pbs.example.org", JobState.COMPLETE, "C", "exit_status 3"),
    ],
)
def test_parse_status_of_torque_states(
    job_id: str, state: JobState, native: str, detail: str | None
) -> None:
    status = torque.parse_status(data("torque/qstat_f_mixed.txt"))[job_id]
    assert status.state is state
    assert status.native_state == native
    if detail is None:
        assert status.detail is None
    else:
        assert status.detail is not None and status.detail.startswith(detail)


def test_parse_status_of_pbs_pro_history() -> None:
    statuses = pbs.parse_status(data("pbs/qstat_fx_mixed.txt"))
    assert statuses["4321.pbspro"].state is JobState.COMPLETE
    assert statuses["4322.pbspro"].state is JobState.RUNNING
    assert statuses["4323.pbspro"].state is JobState.FAILED
    assert pbs.status_argv(["1", "2"]) == ["qstat", "-f", "-x", "1", "2"]
    assert torque.status_argv(["1"]) == ["qstat", "-f", "1"]


def test_unknown_jobs_on_stderr_are_benign_but_other_errors_are_not() -> None:
    unknown = CommandResult((), 153, "", data("torque/qstat_unknown.stderr.txt"))
    assert torque.status_error_is_benign(unknown)
    down = CommandResult((), 1, "", "qstat: cannot connect to server pbs (errno=111)\n")
    assert not torque.status_error_is_benign(down)
    assert not torque.status_error_is_benign(CommandResult((), 1, "", ""))
    finished = CommandResult((), 168, "", data("torque/qdel_completed.stderr.txt"))
    assert torque.cancel_error_is_benign(finished)
    assert torque.cancel_argv("1.s") == ["qdel", "1.s"]


def test_find_uses_qselect() -> None:
    assert torque.find_argv("lwr-a-1-0") == ["qselect", "-N", "lwr-a-1-0"]
    assert pbs.find_argv("lwr-a-1-0") == ["qselect", "-x", "-N", "lwr-a-1-0"]
    ids = torque.parse_find(data("torque/qselect.txt"), "lwr-a-1-0")
    assert ids == ["1236.pbs.example.org", "1240.pbs.example.org"]


def test_unknown_state_defaults_to_running() -> None:
    text = "Job Id: 1.s\n    job_state = Z\n"
    assert torque.parse_status(text)["1.s"].state is JobState.RUNNING
