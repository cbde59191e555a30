"""``queued_cli``: jobs handed to a batch scheduler's command-line tools through a shell.

The manager joins a shell (where commands run) and a scheduler plugin (which commands, and what
their output means). It adds what neither should know about: a timeout on every command, a few
retries with backoff, and the rules that turn the scheduler's word plus the job directory into an
LWR state. The job directories must be visible at the same path to LWR, the submit host and the
compute nodes (a shared filesystem): the job script writes ``return_code`` there and the
stateful layer reads it.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec, Manager
from lwr.managers.cli.schedulers.base import Scheduler, SchedulerStatus
from lwr.managers.cli.shells.base import CommandResult, Shell
from lwr.registry import SCHEDULERS, SHELLS, lookup

log = logging.getLogger(__name__)

#: the file the job script writes last; its presence means the command ran to the end
RETURN_CODE_FILE = "return_code"
#: how many ids go into one status command (keeps the argv well below any length limit)
STATUS_BATCH = 200


@dataclass(frozen=True)
class CliSettings:
    """The typed options of one ``queued_cli`` section; defaults live here and nowhere else."""

    job_plugin: str = "slurm"
    shell_plugin: str = "local"
    command_timeout: float = 30.0
    command_retries: int = 2
    command_retry_delay: float = 1.0
    poll_interval: float = 5.0

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, str]) -> CliSettings:
        """Read and check the options that are not shell options or scheduler directives."""
        defaults = cls()
        return cls(
            job_plugin=options.get("job_plugin", defaults.job_plugin).strip(),
            shell_plugin=options.get("shell_plugin", defaults.shell_plugin).strip(),
            command_timeout=_number(
                name, options, "command_timeout", defaults.command_timeout, low=0.1
            ),
            command_retries=int(
                _number(
                    name, options, "command_retries", defaults.command_retries, low=0, integer=True
                )
            ),
            command_retry_delay=_number(
                name, options, "command_retry_delay", defaults.command_retry_delay, low=0
            ),
            poll_interval=_number(
                name, options, "min_polling_interval", defaults.poll_interval, low=0.1
            ),
        )


class CliManager(Manager):
    """Submits job scripts with ``sbatch``/``qsub``, polls all active jobs in one call, cancels.

    Every ``job_*`` option other than ``job_plugin`` is a scheduler directive (``job_partition =
    debug`` -> ``sbatch --partition=debug``); ``shell_*`` options configure the shell; per job,
    the client's ``submit_native_specification`` adds raw scheduler arguments.
    """

    type_name = "queued_cli"
    known_options = frozenset(
        {
            "job_plugin",
            "shell_plugin",
            "shell_hostname",
            "shell_username",
            "shell_private_key",
            "shell_port",
            "shell_strict_host_key_checking",
            "shell_known_hosts",
            "shell_connect_timeout",
            "command_timeout",
            "command_retries",
            "command_retry_delay",
        }
    )
    option_prefixes = ("job_",)

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        self.check_options(name, options)
        self.settings = CliSettings.from_options(name, options)
        self.poll_interval = self.settings.poll_interval
        self.max_concurrent_jobs = None  # the scheduler does its own queueing
        self.directives = {
            key[len("job_") :]: value
            for key, value in options.items()
            if key.startswith("job_") and key != "job_plugin"
        }
        shell_options = {
            key[len("shell_") :]: value
            for key, value in options.items()
            if key.startswith("shell_") and key != "shell_plugin"
        }
        scheduler_class = lookup("job_plugin", SCHEDULERS, self.settings.job_plugin)
        shell_class = lookup("shell_plugin", SHELLS, self.settings.shell_plugin)
        self.scheduler: Scheduler = scheduler_class()
        self.scheduler.check_directives(self.directives)
        self.shell: Shell = shell_class(shell_options)
        #: ids this process cancelled, so a CANCELLED seen later is ours, not an operator's
        self._cancelled: set[str] = set()
        #: replaced by tests to retry without waiting
        self.sleep: Callable[[float], None] = time.sleep
        log.info(
            "manager %s: %s jobs through %s on %s",
            name,
            self.scheduler.label,
            self.settings.shell_plugin,
            self.shell.describe(),
        )

    # ------------------------------------------------------------------ Manager interface
    def launch(self, spec: LaunchSpec) -> str:
        """Submit ``spec.script`` under ``spec.name``; the scheduler's job id is the external id.

        A submit that failed on our side (timeout, dropped ssh) may still have reached the
        scheduler, so before each retry the job is looked up by name: submitting twice would run
        the tool twice.
        """
        argv = self.scheduler.submit_argv(
            str(spec.script),
            spec.name,
            self.directives,
            native_args=_native_args(spec),
            output_dir=str(spec.job_directory),
        )
        attempts = self.settings.command_retries + 1
        error: SubmitError | None = None
        for attempt in range(attempts):
            if attempt:
                self._backoff(attempt, "submit", error)
                found = self._find(spec.name, quiet=True)
                if found:
                    log.warning(
                        "job %s: an earlier submit did reach %s as %s",
                        spec.name,
                        self.scheduler.label,
                        found,
                    )
                    return found
            try:
                result = self.shell.execute(argv, self.settings.command_timeout)
            except SubmitError as exc:
                error = exc
                continue
            if result.ok:
                job_id = self._parse_submit(result)
                log.info("job %s submitted to %s as %s", spec.name, self.scheduler.label, job_id)
                return job_id
            error = _failure(f"{self.scheduler.label} refused job {spec.name}", result)
        assert error is not None
        raise _final(error, attempts)

    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        """One status command per STATUS_BATCH jobs; raises SubmitError if it keeps failing.

        A job missing from the listing has aged out of the scheduler's memory: its
        ``return_code`` file tells whether it ran to the end.
        """
        statuses: dict[str, ExternalStatus] = {}
        for start in range(0, len(jobs), STATUS_BATCH):
            chunk = jobs[start : start + STATUS_BATCH]
            ids = [job.external_id for job in chunk]
            result = self._run(
                self.scheduler.status_argv(ids), "status", self.scheduler.status_error_is_benign
            )
            native = self.scheduler.parse_status(result.stdout)
            for job in chunk:
                statuses[job.external_id] = self._judge(job, native.get(job.external_id))
        return statuses

    def cancel(self, job: ActiveJob) -> None:
        """Ask the scheduler to stop the job; a job that has already ended is not an error."""
        self._cancelled.add(job.external_id)
        self._run(
            self.scheduler.cancel_argv(job.external_id),
            "cancel",
            self.scheduler.cancel_error_is_benign,
        )
        log.info("job %s (%s) cancelled", job.spec.name, job.external_id)

    def find_orphan(self, spec: LaunchSpec) -> str | None:
        """The id of a job named ``spec.name`` if the scheduler still lists one."""
        return self._find(spec.name, quiet=False)

    # ------------------------------------------------------------------ helpers
    def _judge(self, job: ActiveJob, native: SchedulerStatus | None) -> ExternalStatus:
        """Turn the scheduler's word (or its silence) and the job directory into a status."""
        label = self.scheduler.label
        recorded = (job.spec.job_directory / RETURN_CODE_FILE).exists()
        if native is None:
            if recorded:
                return ExternalStatus(JobState.COMPLETE)
            return ExternalStatus(
                JobState.LOST, reason=f"scheduler no longer knows job {job.external_id}"
            )
        said = native.native_state + (f" ({native.detail})" if native.detail else "")
        if not native.state.is_final:
            return ExternalStatus(native.state, native_state=native.native_state)
        if native.state is JobState.CANCELLED and job.external_id in self._cancelled:
            # our own cancel wins even when the killed script still managed to record a code
            return ExternalStatus(JobState.CANCELLED, native_state=native.native_state)
        if recorded:
            # the command ran to its end, whatever happened to the job afterwards
            return ExternalStatus(JobState.COMPLETE, native_state=native.native_state)
        if native.state is JobState.COMPLETE:
            reason = f"{label} says {said} but the job script recorded no return code"
            return ExternalStatus(
                JobState.COMPLETE, reason=reason, native_state=native.native_state
            )
        if native.state is JobState.CANCELLED:
            return ExternalStatus(
                JobState.FAILED,
                native_state=native.native_state,
                reason=f"{label} job {job.external_id} was cancelled outside LWR: {said}",
            )
        return ExternalStatus(
            native.state,
            native_state=native.native_state,
            reason=f"{label} ended job {job.external_id}: {said}",
        )

    def _find(self, name: str, quiet: bool) -> str | None:
        """Look a job up by name; ``quiet`` turns a failing lookup into "not found"."""
        try:
            result = self._run(self.scheduler.find_argv(name), "find")
        except SubmitError:
            if not quiet:
                raise
            log.warning("could not look up job %s by name", name, exc_info=True)
            return None
        ids = self.scheduler.parse_find(result.stdout, name)
        if len(ids) > 1:
            log.warning(
                "%d %s jobs are named %s (%s); using the newest",
                len(ids),
                self.scheduler.label,
                name,
                ", ".join(ids),
            )
        return ids[-1] if ids else None

    def _parse_submit(self, result: CommandResult) -> str:
        """The job id from a successful submit, or SubmitError keeping what was printed."""
        try:
            return self.scheduler.parse_submit(result.stdout)
        except SubmitError as exc:
            raise SubmitError(
                exc.message,
                argv=result.argv,
                returncode=result.returncode,
                stdout=result.stdout,
                stderr=result.stderr,
            ) from exc

    def _run(
        self,
        argv: list[str],
        purpose: str,
        benign: Callable[[CommandResult], bool] | None = None,
    ) -> CommandResult:
        """Run a scheduler command with timeout and retries; SubmitError when all attempts fail.

        ``benign`` says which non-zero exits are answers rather than failures (squeue's "Invalid
        job id" when every job has left it).
        """
        attempts = self.settings.command_retries + 1
        error: SubmitError | None = None
        for attempt in range(attempts):
            if attempt:
                self._backoff(attempt, purpose, error)
            try:
                result = self.shell.execute(argv, self.settings.command_timeout)
            except SubmitError as exc:
                error = exc
                continue
            if result.ok or (benign is not None and benign(result)):
                return result
            error = _failure(f"{self.scheduler.label} {purpose} command failed", result)
        assert error is not None
        raise _final(error, attempts)

    def _backoff(self, attempt: int, purpose: str, error: SubmitError | None) -> None:
        """Wait before retry ``attempt`` (1, 2, ...): the delay doubles each time."""
        delay = self.settings.command_retry_delay * 2 ** (attempt - 1)
        log.warning(
            "%s %s failed (%s); retrying in %.1f s",
            self.scheduler.label,
            purpose,
            error.message if error else "?",
            delay,
        )
        if delay > 0:
            self.sleep(delay)


def _native_args(spec: LaunchSpec) -> list[str]:
    """Raw scheduler arguments from the client's ``submit_native_specification``."""
    raw = spec.submit_params.get("submit_native_specification") or spec.native_specification
    if not raw:
        return []
    try:
        return shlex.split(raw)
    except ValueError as exc:
        raise SubmitError(f"cannot parse submit_native_specification {raw!r}: {exc}") from exc


def _failure(message: str, result: CommandResult) -> SubmitError:
    """A SubmitError keeping everything the command said."""
    return SubmitError(
        message,
        argv=result.argv,
        returncode=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
    )


def _final(error: SubmitError, attempts: int) -> SubmitError:
    """The last attempt's error, saying how many attempts were made; keeps argv and output."""
    if attempts == 1:
        return error
    final = SubmitError(f"{error.message} [after {attempts} attempts]")
    final.argv, final.returncode = error.argv, error.returncode
    final.stdout, final.stderr = error.stdout, error.stderr
    return final


def _number(
    name: str,
    options: Mapping[str, str],
    key: str,
    default: float,
    low: float,
    integer: bool = False,
) -> float:
    """A numeric option no smaller than ``low``, or ConfigurationError naming the option."""
    raw = options.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"manager {name!r}: {key} must be {kind}, not {raw!r}") from None
    if value < low:
        raise ConfigurationError(f"manager {name!r}: {key} must be at least {low:g}, not {raw}")
    return value
