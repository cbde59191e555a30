"""Slurm through ``sbatch``, ``squeue`` and ``scancel``.

Facts this plugin relies on, checked against Slurm 22.05 (see ``tests/data/cli/slurm``):

* ``sbatch --parsable`` prints ``<id>`` or ``<id>;<cluster>``.
* ``squeue -t all -j a,b,c`` lists finished jobs too, for ``MinJobAge`` seconds (300 by default);
  ids it no longer knows are left out, and when it knows *none* of them it exits 1 with
  "Invalid job id specified".
* ``scancel`` exits 0 for a job that has finished or that it does not know.
* ``%T`` shows CANCELLED as soon as a job is cancelled, even while its processes are still being
  killed; the job script's ``return_code`` file is the authority on whether the command finished.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from lwr.errors import SubmitError
from lwr.managers.base import JobState
from lwr.managers.cli.schedulers.base import (
    Scheduler,
    SchedulerStatus,
    is_false,
    is_true,
    map_state,
    split_flag,
)
from lwr.managers.cli.shells.base import CommandResult

log = logging.getLogger(__name__)

#: job id, state, reason, name; the name goes last because only it may contain the separator
SQUEUE_FORMAT = "%i|%T|%r|%j"

#: every job state of ``squeue --help``/squeue(1) in Slurm 22.05, as LWR sees it
STATES: Mapping[str, JobState] = {
    # waiting for resources, for a requeue or for a hold to be released
    "PENDING": JobState.QUEUED,
    "CONFIGURING": JobState.QUEUED,  # nodes allocated but still booting
    "REQUEUED": JobState.QUEUED,
    "REQUEUE_HOLD": JobState.QUEUED,
    "REQUEUE_FED": JobState.QUEUED,
    "RESV_DEL_HOLD": JobState.QUEUED,
    # started and not yet over
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,  # epilog still running; return_code may not be written yet
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    # ended on its own: the job script's return_code decides
    "COMPLETED": JobState.COMPLETE,
    "FAILED": JobState.COMPLETE,  # the batch script exited non-zero (or could not start)
    # ended by the scheduler
    "CANCELLED": JobState.CANCELLED,
    "TIMEOUT": JobState.FAILED,
    "DEADLINE": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "NODE_FAIL": JobState.LOST,
    "REVOKED": JobState.LOST,  # a federation moved the job to another cluster
}

#: a state not in STATES: keep polling, it has not been reported as over
DEFAULT_STATE = JobState.RUNNING


class Slurm(Scheduler):
    """``job_<name> = value`` becomes ``--<name>=value`` (``_`` -> ``-``); ``true``/empty gives
    the bare flag (``job_hold = true`` -> ``--hold``), ``false`` leaves it out."""

    label = "Slurm"
    reserved_directives = frozenset(
        {"name", "job_name", "J", "output", "o", "error", "e", "parsable", "wrap"}
    )

    def submit_argv(
        self,
        script: str,
        name: str,
        directives: Mapping[str, str],
        native_args: Sequence[str] = (),
        output_dir: str | None = None,
    ) -> list[str]:
        """``sbatch --parsable --job-name=NAME [--output/--error] [directives] [native] script``.

        Directives and native arguments go on the command line rather than into ``#SBATCH``
        lines, so the job script stays exactly as the core wrote it; the command line wins over
        any ``#SBATCH`` line anyway.
        """
        argv = ["sbatch", "--parsable", f"--job-name={name}"]
        if output_dir is not None:
            argv += [
                f"--output={output_dir.rstrip('/')}/{self.output_file}",
                f"--error={output_dir.rstrip('/')}/{self.error_file}",
            ]
        for key, value in sorted(directives.items()):
            argv += _directive(key, value)
        argv += list(native_args)
        argv.append(script)
        return argv

    def parse_submit(self, stdout: str) -> str:
        """The id from ``--parsable`` output (``123`` or ``123;cluster``)."""
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        if lines:
            job_id = lines[-1].split(";", 1)[0]
            if job_id.isdigit():
                return job_id
        raise SubmitError(f"sbatch printed no job id: {stdout.strip()!r}", stdout=stdout)

    def status_argv(self, ids: Sequence[str]) -> list[str]:
        """``squeue -h -t all -j a,b,c -o FORMAT``: one call for every active job."""
        return ["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", SQUEUE_FORMAT]

    def parse_status(self, stdout: str) -> dict[str, SchedulerStatus]:
        """Read ``SQUEUE_FORMAT`` lines; malformed lines are logged and skipped."""
        statuses: dict[str, SchedulerStatus] = {}
        for job_id, native, reason, _name in _rows(stdout):
            state = map_state(STATES, native, DEFAULT_STATE, self.label)
            detail = reason if reason and reason != "None" else None
            statuses[job_id] = SchedulerStatus(state, native, detail)
        return statuses

    def status_error_is_benign(self, result: CommandResult) -> bool:
        """squeue fails with "Invalid job id specified" when it knows none of the ids."""
        return "Invalid job id specified" in result.stderr

    def cancel_argv(self, job_id: str) -> list[str]:
        """``scancel ID`` (it exits 0 even for a finished or unknown job)."""
        return ["scancel", job_id]

    def cancel_error_is_benign(self, result: CommandResult) -> bool:
        """Older releases complain about finished or unknown jobs; that is what we wanted."""
        text = result.stderr
        return "Invalid job id" in text or "already completing or completed" in text

    def find_argv(self, name: str) -> list[str]:
        """``squeue -h -t all --name=NAME -o FORMAT``."""
        return ["squeue", "-h", "-t", "all", f"--name={name}", "-o", SQUEUE_FORMAT]

    def parse_find(self, stdout: str, name: str) -> list[str]:
        """Ids of the rows whose name is exactly ``name``, oldest (lowest id) first."""
        ids = [job_id for job_id, _s, _r, row_name in _rows(stdout) if row_name == name]
        return sorted(ids, key=_id_order)


def _directive(key: str, value: str) -> list[str]:
    """One ``job_*`` option as sbatch arguments."""
    if is_false(value):
        return []
    flag = split_flag(key)
    if is_true(value):
        return [flag]
    if flag.startswith("--"):
        return [f"{flag}={value.strip()}"]
    return [flag, value.strip()]


def _rows(stdout: str) -> list[tuple[str, str, str, str]]:
    """Split squeue lines in ``SQUEUE_FORMAT`` into (id, state, reason, name)."""
    rows = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split("|", 3)
        if len(parts) != 4 or not parts[0]:
            log.warning("ignoring a squeue line not in the expected format: %r", line)
            continue
        job_id, native, reason, name = parts
        rows.append((job_id.strip(), native.strip().upper(), reason.strip(), name))
    return rows


def _id_order(job_id: str) -> tuple[int, str]:
    """Sort numeric ids numerically; array or federated ids keep a stable order after them."""
    head = job_id.split("_", 1)[0]
    return (int(head), job_id) if head.isdigit() else (1 << 62, job_id)
