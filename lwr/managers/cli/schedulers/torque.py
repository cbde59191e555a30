"""Torque and PBS Professional through ``qsub``, ``qstat -f``, ``qdel`` and ``qselect``.

Neither runs on Debian 12, so this plugin was tested only against ``qstat -f`` samples written
from the two projects' documentation (``tests/data/cli/torque``), not against a live server.

Facts used: ``qsub`` prints the full job id (``123.server.example.org``); ``qstat -f`` prints one
``Job Id: ID`` block per job of ``key = value`` lines, long values continued on lines starting
with a tab; Torque keeps finished jobs in state ``C`` for ``keep_completed`` seconds with an
``exit_status``, while PBS Pro shows finished jobs (state ``F``, ``Exit_status``) only with
``-x``. A negative exit status is Torque's own failure code (``-11``: walltime exceeded); above
256 it is 256 plus the signal that killed the job.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from lwr.errors import SubmitError
from lwr.managers.base import JobState
from lwr.managers.cli.schedulers.base import (
    Scheduler,
    SchedulerStatus,
    is_false,
    is_true,
    map_state,
)
from lwr.managers.cli.shells.base import CommandResult

log = logging.getLogger(__name__)

#: one-letter ``job_state`` values of Torque and PBS Professional
STATES: Mapping[str, JobState] = {
    "Q": JobState.QUEUED,
    "H": JobState.QUEUED,  # held
    "W": JobState.QUEUED,  # waiting for its start time
    "T": JobState.QUEUED,  # in transit between servers/queues
    "R": JobState.RUNNING,
    "E": JobState.RUNNING,  # exiting: epilogue and output copy still running
    "S": JobState.RUNNING,  # suspended
    "U": JobState.RUNNING,  # PBS Pro: suspended because the workstation is busy
    "B": JobState.RUNNING,  # PBS Pro: an array job has started
    "C": JobState.COMPLETE,  # Torque: completed; exit_status says how
    "F": JobState.COMPLETE,  # PBS Pro: finished; Exit_status says how
    "X": JobState.COMPLETE,  # PBS Pro: a subjob has finished
    "M": JobState.LOST,  # PBS Pro: moved to another server, out of our sight
}

DEFAULT_STATE = JobState.RUNNING

#: Torque's negative exit codes (JOB_EXEC_*), in words for the failure reason
EXEC_CODES: Mapping[int, str] = {
    -1: "job could not be started (JOB_EXEC_FAIL1)",
    -2: "job could not be started after its files were staged (JOB_EXEC_FAIL2)",
    -3: "job start will be retried (JOB_EXEC_RETRY)",
    -4: "job aborted on MOM initialisation (JOB_EXEC_INITABT)",
    -5: "job aborted on MOM restart (JOB_EXEC_INITRST)",
    -6: "job aborted on MOM restart, restart failed (JOB_EXEC_INITRMG)",
    -7: "job restart failed (JOB_EXEC_BADRESRT)",
    -8: "exec() of the job failed (JOB_EXEC_CMDFAIL)",
    -9: "could not create the job's stdout/stderr (JOB_EXEC_STDOUTFAIL)",
    -10: "memory limit exceeded (JOB_EXEC_OVERLIMIT_MEM)",
    -11: "walltime limit exceeded (JOB_EXEC_OVERLIMIT_WT)",
    -12: "CPU time limit exceeded (JOB_EXEC_OVERLIMIT_CPUT)",
}

#: ``job_<key>`` directives that have their own qsub flag; all others become ``-l key=value``
FLAGS: Mapping[str, str] = {
    "queue": "-q",
    "destination": "-q",
    "account": "-A",
    "priority": "-p",
    "hold": "-h",
    "join": "-j",
    "mail_options": "-m",
    "mail_users": "-M",
    "shell": "-S",
    "variables": "-v",
    "resources": "-l",  # a raw resource list: job_resources = nodes=1:ppn=4,walltime=1:00:00
}
#: directives passed as ``-W key=value``
W_ATTRIBUTES = frozenset({"group_list", "depend", "umask", "stagein", "stageout"})

_UNKNOWN_JOB = re.compile(r"Unknown Job Id|Job has finished|invalid state for job", re.IGNORECASE)
_NAME_LIMIT = 236  # PBS Pro's limit; old Torque releases truncate at 15 characters


class Torque(Scheduler):
    """Torque (PBS-derived): ``qstat -f`` shows completed jobs in state ``C``."""

    label = "Torque"
    reserved_directives = frozenset(
        {"name", "job_name", "N", "o", "e", "output_path", "error_path"}
    )
    #: extra qstat/qselect arguments that include finished jobs (PBS Pro needs ``-x``)
    history_args: tuple[str, ...] = ()

    def submit_argv(
        self,
        script: str,
        name: str,
        directives: Mapping[str, str],
        native_args: Sequence[str] = (),
        output_dir: str | None = None,
    ) -> list[str]:
        """``qsub -N NAME [-o/-e] [directives] [native] script``."""
        if len(name) > _NAME_LIMIT:
            raise SubmitError(f"job name {name!r} is longer than {self.label} allows")
        argv = ["qsub", "-N", name]
        if output_dir is not None:
            base = output_dir.rstrip("/")
            argv += ["-o", f"{base}/{self.output_file}", "-e", f"{base}/{self.error_file}"]
        for key, value in sorted(directives.items()):
            argv += _directive(key, value)
        argv += list(native_args)
        argv.append(script)
        return argv

    def parse_submit(self, stdout: str) -> str:
        """qsub prints the job id alone on its last line."""
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        if lines and re.fullmatch(r"\d+(\[\d*\])?(\.[\w.-]+)?", lines[-1]):
            return lines[-1]
        raise SubmitError(f"qsub printed no job id: {stdout.strip()!r}", stdout=stdout)

    def status_argv(self, ids: Sequence[str]) -> list[str]:
        """``qstat -f [-x] ids...``."""
        return ["qstat", "-f", *self.history_args, *ids]

    def parse_status(self, stdout: str) -> dict[str, SchedulerStatus]:
        """Read the ``Job Id:`` blocks of ``qstat -f``."""
        statuses: dict[str, SchedulerStatus] = {}
        for job_id, attrs in parse_qstat_full(stdout).items():
            native = attrs.get("job_state", "").strip()
            if not native:
                log.warning("%s printed no job_state for job %s", self.label, job_id)
                continue
            state = map_state(STATES, native, DEFAULT_STATE, self.label)
            detail = None
            if state is JobState.COMPLETE:
                state, detail = _judge_exit(attrs.get("exit_status"))
            statuses[job_id] = SchedulerStatus(state, native, detail)
        return statuses

    def status_error_is_benign(self, result: CommandResult) -> bool:
        """qstat exits non-zero when any id is unknown; the others are still on stdout."""
        return _only_unknown_jobs(result.stderr)

    def cancel_argv(self, job_id: str) -> list[str]:
        """``qdel ID``."""
        return ["qdel", job_id]

    def cancel_error_is_benign(self, result: CommandResult) -> bool:
        """qdel refuses finished or forgotten jobs; they need no cancelling."""
        return _only_unknown_jobs(result.stderr)

    def find_argv(self, name: str) -> list[str]:
        """``qselect [-x] -N NAME`` prints the ids of jobs with that name."""
        return ["qselect", *self.history_args, "-N", name]

    def parse_find(self, stdout: str, name: str) -> list[str]:
        """qselect already filtered by name: its lines are the ids, sorted oldest first."""
        ids = [line.strip() for line in stdout.splitlines() if line.strip()]
        return sorted(ids, key=_id_order)


class Pbs(Torque):
    """PBS Professional / OpenPBS: finished jobs appear only with ``-x`` (job history)."""

    label = "PBS"
    history_args = ("-x",)


def parse_qstat_full(stdout: str) -> dict[str, dict[str, str]]:
    """``qstat -f`` text -> {job id: {lower-case attribute: value}}.

    A line that starts with a tab continues the previous value (qstat wraps long values, cutting
    them anywhere, so the pieces are joined without a separator).
    """
    jobs: dict[str, dict[str, str]] = {}
    attrs: dict[str, str] | None = None
    key: str | None = None
    for line in stdout.splitlines():
        if line.startswith("Job Id:"):
            attrs = jobs.setdefault(line.split(":", 1)[1].strip(), {})
            key = None
        elif attrs is None or not line.strip():
            continue
        elif line.startswith("\t") and key is not None:
            attrs[key] += line[1:]
        elif " = " in line:
            raw_key, value = line.split(" = ", 1)
            key = raw_key.strip().lower()
            attrs[key] = value.strip()
    return jobs


def _judge_exit(raw: str | None) -> tuple[JobState, str | None]:
    """A finished job's exit status: an ordinary exit, a Torque failure code, or a signal."""
    if raw is None or not raw.strip().lstrip("-").isdigit():
        return JobState.COMPLETE, None
    code = int(raw)
    if code < 0:
        return JobState.FAILED, f"exit_status {code}: {EXEC_CODES.get(code, 'Torque failure')}"
    if code > 256:
        return JobState.FAILED, f"exit_status {code}: killed by signal {code - 256}"
    return JobState.COMPLETE, f"exit_status {code}"


def _directive(key: str, value: str) -> list[str]:
    """One ``job_*`` option as qsub arguments (see FLAGS and W_ATTRIBUTES)."""
    if is_false(value):
        return []
    value = value.strip()
    if key in FLAGS:
        return [FLAGS[key]] if is_true(value) and key == "hold" else [FLAGS[key], value]
    if key in W_ATTRIBUTES:
        return ["-W", f"{key}={value}"]
    return ["-l", f"{key}={value}"]


def _only_unknown_jobs(stderr: str) -> bool:
    """True if every complaint on stderr is about a job that is unknown or finished."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return bool(lines) and all(_UNKNOWN_JOB.search(line) for line in lines)


def _id_order(job_id: str) -> tuple[int, str]:
    """Order ``123.server`` ids by their sequence number."""
    head = re.match(r"\d+", job_id)
    return (int(head.group()), job_id) if head else (1 << 62, job_id)
