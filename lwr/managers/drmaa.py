"""Job managers that submit job scripts through DRMAA (``queued_drmaa``, ``queued_external_drmaa``).

``DrmaaManager`` submits as LWR's own user through the process's one DRMAA session.
``ExternalDrmaaManager`` runs each job as the system user the client names: it hands the job
directory to that user and submits and kills through small helpers started with ``sudo -u USER``
(see :mod:`lwr.scripts`), because a DRMAA session submits as whoever opened it. Both poll through
the shared session, which can see every user's jobs. Exercised against Son of Grid Engine 8.1.9;
on SGE, ``qstat``/``qacct`` add orphan lookup and failure reasons (:mod:`lwr.managers.drmaa_sge`).
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shlex
import sys
from collections.abc import Mapping, Sequence

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers.base import ActiveJob, ExternalStatus, JobState, LaunchSpec, Manager
from lwr.managers.commands import run_checked
from lwr.managers.drmaa_session import (
    GONE,
    JobDescription,
    SharedSession,
    drmaa_environment,
    import_drmaa,
    map_native_state,
    scheduler_job_name,
)
from lwr.managers.drmaa_sge import SgeCommands
from lwr.managers.users import UserPolicy, parse_bool

log = logging.getLogger(__name__)

RETURN_CODE_FILE = "return_code"


class DrmaaManager(Manager):
    """Submit job scripts through DRMAA as LWR's own user.

    ``native_specification`` in the manager section is the default; a client's
    ``submit_native_specification`` replaces it for its job. The library is imported when the
    manager is built (a broken DRMAA setup stops start-up with a ConfigurationError) but the
    session is opened on first use, so a scheduler that is briefly down does not.
    """

    type_name = "queued_drmaa"
    known_options = frozenset({"native_specification"})

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        import_drmaa()
        self.native_specification = self.options.get("native_specification", "")
        self._session: SharedSession | None = None
        self._sge: SgeCommands | None = None

    @property
    def session(self) -> SharedSession:
        """The shared DRMAA session, opened on first use."""
        if self._session is None:
            try:
                self._session = SharedSession.acquire()
            except ConfigurationError:
                raise
            except Exception as exc:  # the binding's DrmaaException family; drmaa is lazy
                raise SubmitError(f"cannot open a DRMAA session: {exc}") from exc
            if self._session.drms_info.upper().startswith(("SGE", "GE ", "OGS", "UGE")):
                self._sge = SgeCommands()
        return self._session

    def launch(self, spec: LaunchSpec) -> str:
        """Submit ``spec.script`` as this process's user; returns the DRMAA job id."""
        description = JobDescription.from_spec(spec, self.native_specification)
        external_id = self.session.run_job(description)
        log.info("submitted %s as DRMAA job %s", description.job_name, external_id)
        return external_id

    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        """Ask DRMAA about each job; jobs it forgot are judged by their ``return_code`` file."""
        return {job.external_id: self._status(job) for job in jobs}

    def cancel(self, job: ActiveJob) -> None:
        """Remove the job from the scheduler; already finished jobs are left alone."""
        self.session.terminate(job.external_id)

    def find_orphan(self, spec: LaunchSpec) -> str | None:
        """On SGE, find a queued or running job by its name; elsewhere DRMAA cannot search."""
        self.session  # noqa: B018 - opening the session decides whether SGE's tools apply
        if self._sge is None:
            return None
        return self._sge.find_job(scheduler_job_name(spec.name))

    def shutdown(self) -> None:
        """Let go of the shared session (closed with its last user); jobs keep running."""
        if self._session is not None:
            self._session.release()
            self._session = None

    def _status(self, job: ActiveJob) -> ExternalStatus:
        native = self.session.job_status(job.external_id)
        if native == GONE:
            self._job_ended(job)
            return self._gone_status(job)
        status = map_native_state(native)
        if not status.state.is_final:
            return status
        self._job_ended(job)
        if status.state is JobState.COMPLETE or _has_return_code(job):
            return ExternalStatus(JobState.COMPLETE, native_state=native)
        reason = self._failure_reason(job) or status.reason
        # an SGE job in Eqw stays in the queue forever unless removed
        self._remove_quietly(job)
        return ExternalStatus(JobState.FAILED, reason=reason, native_state=native)

    def _gone_status(self, job: ActiveJob) -> ExternalStatus:
        if _has_return_code(job):
            return ExternalStatus(JobState.COMPLETE, native_state=GONE)
        reason = self._failure_reason(job) or (
            "the scheduler no longer knows the job and it wrote no return_code"
        )
        return ExternalStatus(JobState.LOST, reason=reason, native_state=GONE)

    def _failure_reason(self, job: ActiveJob) -> str | None:
        return self._sge.failure_reason(job.external_id) if self._sge else None

    def _remove_quietly(self, job: ActiveJob) -> None:
        try:
            self.cancel(job)
        except SubmitError as exc:
            log.warning("could not remove failed job %s: %s", job.external_id, exc)

    def _job_ended(self, job: ActiveJob) -> None:
        """Hook run when a job reached a final state, before its files are looked at."""


class ExternalDrmaaManager(DrmaaManager):
    """Run each job as the system user named by the client, through ``sudo``-able helpers.

    Launch: check the user (:class:`~lwr.managers.users.UserPolicy`), chown the job directory to
    them, then ``sudo -n -u USER <drmaa_launch_script>`` with a JSON description on stdin. Kill:
    the same with ``drmaa_kill_script``. When a job ends its directory is chowned back to LWR's
    user so the outputs can be collected. ``sudo -E`` is not used: sudo drops variables such as
    ``GLIBC_TUNABLES`` anyway, so the DRMAA environment travels in the JSON and the helper
    re-executes itself with it. ``production = false`` runs the helpers without sudo (jobs then
    run as LWR's own user; for development only).
    """

    type_name = "queued_external_drmaa"
    known_options = DrmaaManager.known_options | frozenset(
        {
            "chown_working_directory_script",
            "drmaa_launch_script",
            "drmaa_kill_script",
            "production",
            "sudo",
            "allowed_users",
            "allow_root",
            "min_uid",
            "helper_timeout",
        }
    )

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        super().__init__(name, options)
        opts = self.options
        self.production = parse_bool("production", opts.get("production", "true"))
        self.sudo = shlex.split(opts.get("sudo", "sudo -n"))
        self.chown_command = _command(
            opts, "chown_working_directory_script", "chown_working_directory"
        )
        self.launch_command = _command(opts, "drmaa_launch_script", "drmaa_launch")
        self.kill_command = _command(opts, "drmaa_kill_script", "drmaa_kill")
        self.policy = UserPolicy.from_options(
            opts.get("allowed_users", ""),
            opts.get("allow_root", "false"),
            opts.get("min_uid", "1000"),
        )
        try:
            self.helper_timeout = float(opts.get("helper_timeout", "120"))
        except ValueError as exc:
            raise ConfigurationError(f"manager {name!r}: helper_timeout must be a number") from exc
        self._own_user = pwd.getpwuid(os.getuid()).pw_name

    def launch(self, spec: LaunchSpec) -> str:
        """Hand the job directory to ``spec.user`` and submit the script as them."""
        account = self.policy.check(spec.user)
        self._chown(spec, account.pw_name)
        description = JobDescription.from_spec(spec, self.native_specification)
        payload = {"job": json.loads(description.to_json()), "environment": self._environment()}
        out = self._helper(self.launch_command, account.pw_name, payload, "launch")
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if not lines or len(lines[-1].split()) != 1:
            raise SubmitError(
                f"launch helper printed no job id for {description.job_name}",
                argv=self.launch_command,
                returncode=0,
                stdout=out,
            )
        log.info(
            "submitted %s as DRMAA job %s (user %s)",
            description.job_name,
            lines[-1],
            account.pw_name,
        )
        return lines[-1]

    def cancel(self, job: ActiveJob) -> None:
        """Terminate the job as its user (only they, or an SGE manager, may), then chown back."""
        account = self.policy.check(job.spec.user)
        payload = {"external_id": job.external_id, "environment": self._environment()}
        self._helper(self.kill_command, account.pw_name, payload, "kill")
        self._job_ended(job)

    def _job_ended(self, job: ActiveJob) -> None:
        try:
            self._chown(job.spec, self._own_user)
        except SubmitError as exc:
            log.error(
                "could not give job directory of %s back to %s: %s",
                job.external_id,
                self._own_user,
                exc,
            )

    def _environment(self) -> dict[str, str]:
        return drmaa_environment(os.environ)

    def _chown(self, spec: LaunchSpec, user: str) -> None:
        argv = [*self._privileged("root"), *self.chown_command, user, str(spec.job_directory)]
        self._run(argv, None, "chown of the job directory")

    def _helper(self, command: list[str], user: str, payload: object, what: str) -> str:
        argv = [*self._privileged(user), *command]
        return self._run(argv, json.dumps(payload), f"DRMAA {what} helper")

    def _privileged(self, user: str) -> list[str]:
        if not self.production:
            return []
        return [*self.sudo, "-u", user] if user != "root" else list(self.sudo)

    def _run(self, argv: list[str], stdin: str | None, what: str) -> str:
        return run_checked(argv, what, self.helper_timeout, stdin=stdin or "", cwd="/")


def _command(options: Mapping[str, str], key: str, module: str) -> list[str]:
    """The configured helper command, or this interpreter running LWR's own helper isolated."""
    configured = options.get(key, "").strip()
    if configured:
        return shlex.split(configured)
    return [sys.executable, "-I", "-m", f"lwr.scripts.{module}"]


def _has_return_code(job: ActiveJob) -> bool:
    return (job.spec.job_directory / RETURN_CODE_FILE).exists()
