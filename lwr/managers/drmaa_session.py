"""The DRMAA side of the DRMAA managers: loading the library, one shared session, the state table.

Kept apart from :mod:`lwr.managers.drmaa` because the ``sudo``-able launch and kill entry points in
:mod:`lwr.scripts` need exactly the same template building and error translation without the
manager around it. ``drmaa`` is imported lazily: the Python binding loads the C library at import
time, and a host that configures no DRMAA manager must start without it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any, TypeVar

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers.base import ExternalStatus, JobState, LaunchSpec

log = logging.getLogger(__name__)

T = TypeVar("T")

#: what the DRMAA answer "no such job" becomes: the session no longer knows the id
GONE = "gone"

#: environment variables the DRMAA library needs; passed explicitly to the sudo-ed helper scripts
DRMAA_ENVIRONMENT_PREFIXES = ("SGE_", "DRMAA_", "SLURM_", "PBS_", "LSF_")
DRMAA_ENVIRONMENT_NAMES = frozenset({"GLIBC_TUNABLES", "LD_PRELOAD", "LD_LIBRARY_PATH"})

#: how long a call may wait for the shared session's lock before giving up (never block forever)
LOCK_TIMEOUT = 60.0

# Every state the DRMAA 1.0 binding can answer, mapped explicitly. A user hold stays QUEUED (an
# operator or ``-h`` in the native specification holds it on purpose); a system hold is how SGE
# reports some errors, so it is a failure like SGE's own FAILED (which also covers ``Eqw``).
_STATE_TABLE: Mapping[str, tuple[JobState, str | None]] = {
    "queued_active": (JobState.QUEUED, None),
    "user_on_hold": (JobState.QUEUED, None),
    "system_on_hold": (JobState.FAILED, "held by the scheduler (error state)"),
    "user_system_on_hold": (JobState.FAILED, "held by the scheduler (error state)"),
    "running": (JobState.RUNNING, None),
    "system_suspended": (JobState.RUNNING, None),
    "user_suspended": (JobState.RUNNING, None),
    "user_system_suspended": (JobState.RUNNING, None),
    "done": (JobState.COMPLETE, None),
    "failed": (JobState.FAILED, "the scheduler reports the job failed (aborted, killed or Eqw)"),
    # the library cannot tell right now; keep polling rather than decide
    "undetermined": (JobState.RUNNING, None),
}


def map_native_state(native: str) -> ExternalStatus:
    """Turn a DRMAA state string into an ExternalStatus; unknown strings are logged, not dropped.

    The default for an unknown string is RUNNING: it keeps the job polled, and a job that really
    ended is found by its ``return_code`` file once DRMAA forgets it.
    """
    entry = _STATE_TABLE.get(native)
    if entry is None:
        log.warning("unknown DRMAA job state %r; treating it as running", native)
        return ExternalStatus(JobState.RUNNING, native_state=native)
    state, reason = entry
    return ExternalStatus(state, reason=reason, native_state=native)


def import_drmaa() -> ModuleType:
    """Import the ``drmaa`` binding, turning every way it fails into a ConfigurationError.

    The binding loads the C library when imported, so a wrong path or the static-TLS failure of
    SGE's libdrmaa surface here, at start-up, with the variables that fix them.
    """
    try:
        import drmaa  # lazily, on purpose: see the docstring
    except ImportError as exc:
        raise ConfigurationError(
            "the DRMAA managers need the Python module 'drmaa': pip install drmaa "
            "(and set DRMAA_LIBRARY_PATH in local_env.sh)"
        ) from exc
    except (OSError, RuntimeError) as exc:
        raise ConfigurationError(
            f"the DRMAA library could not be loaded ({exc}): set DRMAA_LIBRARY_PATH to the "
            "library's full path (for SGE /usr/lib/gridengine-drmaa/lib/libdrmaa.so.1.0) and, for "
            "'cannot allocate memory in static TLS block', export "
            "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 before LWR starts (local_env.sh)"
        ) from exc
    return drmaa


def drmaa_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` a DRMAA client needs, for a helper that sudo started afresh."""
    return {
        key: value
        for key, value in environ.items()
        if key in DRMAA_ENVIRONMENT_NAMES or key.startswith(DRMAA_ENVIRONMENT_PREFIXES)
    }


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def scheduler_job_name(name: str) -> str:
    """``spec.name`` made safe for SGE (no ``/:@\\*?``, no leading digit) to find orphans by."""
    safe = _UNSAFE_NAME.sub("_", name)
    return safe if safe[:1].isalpha() else f"j{safe}"


@dataclass(frozen=True)
class JobDescription:
    """Everything needed to submit one job script: built by the manager, possibly sent as JSON.

    Scheduler output goes to ``drmaa_stdout``/``drmaa_stderr`` in the job directory (the script
    writes the command's own ``stdout``/``stderr``); giving SGE explicit paths and a working
    directory is what keeps a job out of ``Eqw`` when the user has no home directory.
    """

    job_name: str
    remote_command: str
    working_directory: str
    output_path: str
    error_path: str
    native_specification: str = ""

    @classmethod
    def from_spec(cls, spec: LaunchSpec, default_native: str = "") -> JobDescription:
        """Describe ``spec``; the client's native specification replaces the manager's default."""
        job_dir = spec.job_directory
        native = spec.native_specification
        return cls(
            job_name=scheduler_job_name(spec.name),
            remote_command=str(spec.script),
            working_directory=str(job_dir),
            output_path=str(job_dir / "drmaa_stdout"),
            error_path=str(job_dir / "drmaa_stderr"),
            native_specification=(native if native is not None else default_native).strip(),
        )

    def to_json(self) -> str:
        """Serialise for the launch helper's standard input."""
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobDescription:
        """Rebuild from :meth:`to_json`'s dict, refusing missing or unexpected keys by name."""
        expected = set(cls.__dataclass_fields__)
        extra = set(data) - expected
        if extra:
            raise ValueError(f"unexpected job description key(s): {', '.join(sorted(extra))}")
        return cls(**{key: str(value) for key, value in data.items()})


def call_with_retry(
    call: Callable[[], T],
    what: str,
    transient: tuple[type[BaseException], ...],
    attempts: int = 3,
    delay: float = 0.5,
) -> T:
    """Run ``call``, retrying ``transient`` errors with a doubling delay, then raise SubmitError.

    Schedulers refuse now and then (SGE's qmaster busy, a lost connection); a few short retries
    absorb that without hiding a scheduler that is really down.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except transient as exc:
            if attempt == attempts:
                raise SubmitError(f"{what} failed after {attempts} attempts: {exc}") from exc
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


class SharedSession:
    """The one DRMAA session of this process, shared by every DRMAA manager and thread.

    DRMAA 1.0 allows one session per process and its C libraries are not all thread-safe, so
    every call goes through one lock; the lock is taken with a timeout so a hung library call
    turns into an error for the caller instead of stalling every poll behind it.
    """

    _instance: SharedSession | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self.drmaa = import_drmaa()
        self._session = self.drmaa.Session()
        self._lock = threading.Lock()
        self._users = 0
        self._session.initialize()
        self.drms_info = str(self._session.drmsInfo)
        log.info("DRMAA session opened: %s (contact %s)", self.drms_info, self._session.contact)

    @classmethod
    def acquire(cls) -> SharedSession:
        """Return the process's session, opening it on first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            cls._instance._users += 1
            return cls._instance

    def release(self) -> None:
        """Close the session when its last user lets go; running jobs keep running."""
        with SharedSession._instance_lock:
            self._users -= 1
            if self._users > 0 or SharedSession._instance is not self:
                return
            SharedSession._instance = None
        with self._locked("closing the DRMAA session"):
            try:
                self._session.exit()
            except self.drmaa.errors.DrmaaException as exc:
                log.warning("closing the DRMAA session failed: %s", exc)

    @property
    def transient_errors(self) -> tuple[type[BaseException], ...]:
        """DRMAA errors worth retrying: the scheduler was busy or briefly unreachable."""
        errors = self.drmaa.errors
        return (errors.TryLaterException, errors.DrmCommunicationException, TimeoutError)

    def run_job(self, description: JobDescription) -> str:
        """Submit ``description``; returns the scheduler's job id."""

        def submit() -> str:
            with self._locked("submitting a job"):
                template = self._session.createJobTemplate()
                try:
                    fill_template(template, description)
                    return str(self._session.runJob(template))
                finally:
                    self._session.deleteJobTemplate(template)

        try:
            return call_with_retry(
                submit, f"DRMAA submit of {description.job_name}", self.transient_errors, attempts=2
            )
        except self.drmaa.errors.DrmaaException as exc:
            raise SubmitError(f"DRMAA refused job {description.job_name}: {exc}") from exc

    def job_status(self, external_id: str) -> str:
        """The DRMAA state string of a job, or :data:`GONE` when the session does not know it."""

        def status() -> str:
            with self._locked("polling a job"):
                try:
                    return str(self._session.jobStatus(external_id))
                except self.drmaa.errors.InvalidJobException:
                    return GONE

        try:
            return call_with_retry(
                status, f"DRMAA status of job {external_id}", self.transient_errors
            )
        except self.drmaa.errors.DrmaaException as exc:
            raise SubmitError(f"DRMAA status of job {external_id} failed: {exc}") from exc

    def terminate(self, external_id: str) -> None:
        """Remove a job from the scheduler; a job it no longer knows is already gone, so fine."""

        def control() -> None:
            with self._locked("terminating a job"):
                try:
                    self._session.control(external_id, self.drmaa.JobControlAction.TERMINATE)
                except self.drmaa.errors.InvalidJobException:
                    log.debug("job %s already gone from the scheduler", external_id)

        try:
            call_with_retry(control, f"DRMAA terminate of job {external_id}", self.transient_errors)
        except self.drmaa.errors.DrmaaException as exc:
            raise SubmitError(f"DRMAA terminate of job {external_id} failed: {exc}") from exc

    def _locked(self, what: str) -> _TimedLock:
        return _TimedLock(self._lock, what)


class _TimedLock:
    """A ``with`` block around a lock that raises TimeoutError instead of waiting forever."""

    def __init__(self, lock: threading.Lock, what: str) -> None:
        self._lock = lock
        self._what = what

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=LOCK_TIMEOUT):
            raise TimeoutError(f"{self._what}: the DRMAA session stayed busy for {LOCK_TIMEOUT}s")

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def fill_template(template: Any, description: JobDescription) -> None:
    """Copy a JobDescription into a DRMAA job template (``:`` prefixes mean "no host" paths)."""
    template.remoteCommand = description.remote_command
    template.jobName = description.job_name
    template.workingDirectory = description.working_directory
    template.outputPath = ":" + description.output_path
    template.errorPath = ":" + description.error_path
    if description.native_specification:
        template.nativeSpecification = description.native_specification
