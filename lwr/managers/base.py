"""The job-manager interface every backend implements, and the states jobs move through.

A backend (local processes, DRMAA, HTCondor, a CLI scheduler) only *launches* a prepared job script,
*polls* what became of it and *cancels* it. Everything else — persistence, queueing up to a
concurrency limit, job directories, recovery after a restart, callbacks for status updates — lives
once in :mod:`lwr.managers.stateful`, so a new scheduler is one small class.

The job script itself (see :mod:`lwr.managers.script`) records the command's return code, stdout and
stderr in the job directory, so a backend never has to fetch them: the same files serve a local
process and a cluster job on a shared filesystem.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lwr.errors import ConfigurationError

WakeCallback = Callable[[], None]

#: options every manager section may hold, whatever its type (``container_runtime`` is read by the
#: TES face, :mod:`lwr.tes.runtime`)
COMMON_OPTIONS = frozenset({"staging_directory", "min_polling_interval", "container_runtime"})


class JobState(str, enum.Enum):
    """The states of the wire protocol (the strings ``pulsar.client`` understands)."""

    SETUP = "setup"  # directory made, waiting for submit; reported as preprocessing
    PREPROCESSING = "preprocessing"
    QUEUED = "queued"
    RUNNING = "running"
    POSTPROCESSING = "postprocessing"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def is_final(self) -> bool:
        """True for the states a job never leaves (until a new attempt is set up)."""
        return self in FINAL_STATES

    @property
    def wire(self) -> str:
        """The status string sent to clients."""
        return "preprocessing" if self is JobState.SETUP else self.value


FINAL_STATES = frozenset({JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED, JobState.LOST})


@dataclass(frozen=True)
class LaunchSpec:
    """What a backend needs to start one job: everything is already on disk in ``job_directory``.

    ``script`` is the generated job script; it runs the command in ``working_directory`` and writes
    ``return_code``, ``stdout`` and ``stderr`` files into ``job_directory``.
    ``native_specification``
    and ``user`` come from the client's submit parameters (``submit_native_specification``,
    ``user``) and are only meaningful to backends that support them.
    """

    manager: str
    job_id: str
    attempt: int
    job_directory: Path
    working_directory: Path
    script: Path
    native_specification: str | None = None
    user: str | None = None
    submit_params: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A scheduler-safe name unique per job attempt, used to find orphans after a crash."""
        return f"lwr-{self.manager}-{self.job_id}-{self.attempt}"


@dataclass(frozen=True)
class ActiveJob:
    """A launched job as the backend sees it on a poll: its spec and the id the backend gave it."""

    spec: LaunchSpec
    external_id: str


@dataclass(frozen=True)
class ExternalStatus:
    """What a backend says about one launched job.

    ``state`` is QUEUED, RUNNING or a final state. For a job that ended on its own the backend
    answers COMPLETE and the stateful layer decides from the recorded return code; FAILED or LOST
    carry ``reason``. ``native_state`` keeps the scheduler's own word (``NODE_FAIL``, ``Eqw``…).
    """

    state: JobState
    reason: str | None = None
    native_state: str | None = None


class Manager(ABC):
    """A backend that runs job scripts somewhere; see the module docstring for the division of work.

    ``max_concurrent_jobs`` is how many jobs the stateful layer lets the backend hold at once
    (``None``: no limit, the scheduler does its own queueing). ``poll_interval`` is how often, in
    seconds, active jobs are polled; a backend that can tell sooner calls the ``wake`` callback it
    is given by :meth:`bind`.
    """

    #: the ``type`` alias in job_managers.ini; set by each subclass
    type_name: str = ""
    #: options this backend accepts in its ``[manager:NAME]`` section beyond COMMON_OPTIONS
    known_options: frozenset[str] = frozenset()
    #: option prefixes accepted wholesale (e.g. the CLI manager's ``job_*`` directives)
    option_prefixes: tuple[str, ...] = ()
    #: launches are cheap and local: start queued jobs in the submitting request's thread
    launch_inline: bool = False
    #: a launched job is running at once (no scheduler queue) and its end calls :meth:`wake`
    starts_immediately: bool = False

    @classmethod
    def check_options(cls, name: str, options: Mapping[str, str]) -> None:
        """Refuse, by name, any option this backend does not understand."""
        unknown = sorted(
            key
            for key in options
            if key not in COMMON_OPTIONS
            and key not in cls.known_options
            and not key.startswith(cls.option_prefixes)
        )
        if unknown:
            known = ", ".join(sorted(COMMON_OPTIONS | cls.known_options))
            raise ConfigurationError(
                f"manager {name!r} ({cls.type_name}): unknown option(s) {', '.join(unknown)} "
                f"(known: {known})"
            )

    def __init__(self, name: str, options: Mapping[str, str]) -> None:
        self.name = name
        self.options = dict(options)
        self.max_concurrent_jobs: int | None = None
        self.poll_interval: float = 1.0
        self._wake = _noop

    def bind(self, wake: WakeCallback) -> None:
        """Receive the callback that wakes the monitor when a job's state changes."""
        self._wake = wake

    def wake(self) -> None:
        """Tell the monitor to poll now instead of at its next interval."""
        self._wake()

    @abstractmethod
    def launch(self, spec: LaunchSpec) -> str:
        """Start the job script; return the external id to persist. Raise SubmitError on failure."""

    @abstractmethod
    def poll(self, jobs: Sequence[ActiveJob]) -> dict[str, ExternalStatus]:
        """Return the status of each given job keyed by external id (batched for schedulers)."""

    @abstractmethod
    def cancel(self, job: ActiveJob) -> None:
        """Stop a queued or running job; must not raise if it has already finished."""

    def find_orphan(self, spec: LaunchSpec) -> str | None:
        """After a crash between launch and persisting its id, find the job by ``spec.name``.

        Returns the external id if the backend can prove the job was launched, else ``None``
        (the stateful layer then reports the job ``lost`` rather than risk running it twice).
        """
        return None

    def shutdown(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release resources; running jobs keep running (they are re-attached on restart)."""


def _noop() -> None:
    return None
