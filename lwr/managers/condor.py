"""Job manager that submits job scripts to HTCondor (``queued_condor``).

It writes a submit description, runs ``condor_submit``, follows the job's own user log in the job
directory (no ``condor_q`` round trips, and it works after a restart) and removes jobs with
``condor_rm``. Only exercised against hand-written samples of HTCondor's documented formats and a
fake ``condor_submit``: HTCondor has no Debian package and cannot run on our build machines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lwr.errors import ConfigurationError, InvalidRequestError, SubmitError
from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec, Manager
from lwr.managers.commands import run_checked
from lwr.managers.condor_log import LogEvent, job_status, parse_events, parse_submit_output

log = logging.getLogger(__name__)

SUBMIT_FILE = "condor.submit"
USER_LOG = "condor.log"
#: submit commands LWR sets itself; neither the admin nor a client may replace them
RESERVED = frozenset({"executable", "output", "error", "log", "initialdir", "queue", "batch_name"})
#: client submit parameters meant for other backends, ignored here
NOT_CONDOR = frozenset({"submit_native_specification", "submit_user"})
#: how long after submitting a missing user log still means "not written yet" rather than lost
LOG_GRACE = 120.0


class CondorManager(Manager):
    """Submit to HTCondor; every ``submit_<key>`` option becomes ``<key> = value`` in the job.

    ``submit_universe`` defaults to vanilla. A client's ``submit_*`` submit parameters override
    the manager's for its job, except the reserved commands that point HTCondor at our files.
    """

    type_name = "queued_condor"
    known_options = frozenset({"condor_submit", "condor_rm", "command_timeout"})
    option_prefixes = ("submit_",)
    #: first pause before retrying condor_submit; doubles each time
    retry_delay = 0.5

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        self.condor_submit = self.options.get("condor_submit", "condor_submit")
        self.condor_rm = self.options.get("condor_rm", "condor_rm")
        try:
            self.command_timeout = float(self.options.get("command_timeout", "60"))
        except ValueError as exc:
            raise ConfigurationError(f"manager {name!r}: command_timeout must be a number") from exc
        self.defaults = {"universe": "vanilla", **_submit_keys(self.options, ConfigurationError)}

    def submit_description(self, spec: LaunchSpec) -> str:
        """The submit description for ``spec`` (public so tests and docs can show it)."""
        job_dir = spec.job_directory
        commands = {**self.defaults, **_submit_keys(spec.submit_params, InvalidRequestError)}
        commands.update(
            executable=str(spec.script),
            output=str(job_dir / "condor_stdout"),
            error=str(job_dir / "condor_stderr"),
            log=str(job_dir / USER_LOG),
            initialdir=str(job_dir),
            batch_name=spec.name,
        )
        lines = [f"{key} = {value}" for key, value in commands.items()]
        return "\n".join([*lines, "queue 1", ""])

    def launch(self, spec: LaunchSpec) -> str:
        """Write the description and submit it; a retry first checks the log for a submit event."""
        submit_file = spec.job_directory / SUBMIT_FILE
        submit_file.write_text(self.submit_description(spec))
        argv = [self.condor_submit, str(submit_file)]
        last: SubmitError | None = None
        for attempt in range(3):
            if attempt:
                orphan = self.find_orphan(spec)
                if orphan is not None:
                    return orphan
                time.sleep(self.retry_delay * 2 ** (attempt - 1))
            try:
                out = self._run(argv, "condor_submit")
                cluster = parse_submit_output(out)
            except ValueError as exc:
                raise SubmitError(str(exc), argv=argv, returncode=0, stdout=out) from exc
            except SubmitError as exc:
                log.warning(
                    "condor_submit of %s failed (attempt %d): %s", spec.name, attempt + 1, exc
                )
                last = exc
                continue
            log.info("submitted %s as HTCondor cluster %s", spec.name, cluster)
            return cluster
        assert last is not None
        raise last

    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        """Read each job's user log; a held job is removed so it does not linger in the queue."""
        statuses = {}
        for job in jobs:
            status = self._status(job)
            if status.native_state == "job_held":
                self._remove_quietly(job)
            statuses[job.external_id] = status
        return statuses

    def cancel(self, job: ActiveJob) -> None:
        """``condor_rm`` the cluster; a job HTCondor no longer knows is fine."""
        argv = [self.condor_rm, job.external_id]
        try:
            self._run(argv, "condor_rm")
        except SubmitError as exc:
            said = f"{exc.stdout} {exc.stderr}".lower()
            if "couldn't find" in said or "not found" in said or "nonexistent" in said:
                log.debug("cluster %s already gone: %s", job.external_id, said.strip())
                return
            raise

    def find_orphan(self, spec: LaunchSpec) -> str | None:
        """The cluster of this attempt's submit event, if the user log already has one."""
        events = _read_events(spec.job_directory / USER_LOG)
        submitted = [event.cluster for event in events if event.code == 0]
        return submitted[-1] if submitted else None

    def _status(self, job: ActiveJob) -> ExternalStatus:
        path = job.spec.job_directory / USER_LOG
        has_rc = (job.spec.job_directory / "return_code").exists()
        if not path.exists():
            return self._without_log(job, has_rc)
        status = job_status(_read_events(path), job.external_id)
        if status.state is JobState.FAILED and has_rc and status.native_state != "job_held":
            return ExternalStatus(JobState.COMPLETE, native_state=status.native_state)
        return status

    def _without_log(self, job: ActiveJob, has_rc: bool) -> ExternalStatus:
        """No user log: done if return_code exists, waiting shortly after submit, else lost."""
        if has_rc:
            return ExternalStatus(JobState.COMPLETE, native_state="no user log")
        submit_file = job.spec.job_directory / SUBMIT_FILE
        try:
            age = time.time() - submit_file.stat().st_mtime
        except FileNotFoundError:
            age = LOG_GRACE
        if age < LOG_GRACE:
            return ExternalStatus(JobState.QUEUED, native_state="no user log yet")
        return ExternalStatus(
            JobState.LOST,
            reason=f"HTCondor never wrote the user log {USER_LOG}",
            native_state="no user log",
        )

    def _remove_quietly(self, job: ActiveJob) -> None:
        try:
            self.cancel(job)
        except SubmitError as exc:
            log.warning("could not remove held cluster %s: %s", job.external_id, exc)

    def _run(self, argv: list[str], what: str) -> str:
        return run_checked(argv, what, self.command_timeout)


def _submit_keys(
    options: Mapping[str, str], error: type[ConfigurationError | InvalidRequestError]
) -> dict[str, str]:
    """``submit_<key>`` entries as submit commands, refusing reserved keys and line breaks."""
    commands: dict[str, str] = {}
    for key, value in options.items():
        if not key.startswith("submit_") or key in NOT_CONDOR:
            continue
        command = key[len("submit_") :]
        if command in RESERVED or not command.replace("_", "").replace("+", "").isalnum():
            raise error(f"{key}: {command!r} cannot be set (LWR sets it, or not a submit command)")
        if "\n" in value or "\r" in value:
            raise error(f"{key}: a submit command value must be one line")
        commands[command] = value
    return commands


def _read_events(path: Path) -> list[LogEvent]:
    try:
        return parse_events(path.read_text(errors="replace"))
    except FileNotFoundError:
        return []
