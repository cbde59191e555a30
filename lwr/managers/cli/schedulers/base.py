"""The scheduler-plugin interface: build command lines, read their output, run nothing.

Keeping plugins pure means their unit tests need no cluster: they replay output captured from a
real scheduler (``tests/data/cli``). Each plugin maps every native state through an explicit
table; a state missing from the table is logged and mapped to a stated default, never to ``None``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from lwr.errors import ConfigurationError
from lwr.managers.base import JobState
from lwr.managers.cli.shells.base import CommandResult

log = logging.getLogger(__name__)

#: values of a directive that mean "pass the flag alone" / "leave the flag out"
TRUE_WORDS = frozenset({"true", "yes", "on"})
FALSE_WORDS = frozenset({"false", "no", "off"})


class SchedulerStatus(NamedTuple):
    """One job as the scheduler reports it.

    ``state`` is what LWR makes of it before looking at the job directory; ``native_state`` is the
    scheduler's own word (``TIMEOUT``, ``C``); ``detail`` is anything else it said that an operator
    would want in the job's failure reason (Slurm's reason, Torque's exit status).
    """

    state: JobState
    native_state: str
    detail: str | None = None


class Scheduler(ABC):
    """Command lines and output parsers for one batch system.

    ``directives`` are the manager's ``job_*`` options without the prefix (``partition``,
    ``time``…); ``native_args`` are extra raw arguments from the client's
    ``submit_native_specification``. ``output_dir`` is where the scheduler's own stdout/stderr of
    the job go (the job directory), so they never land in a home directory on the submit host.
    """

    #: a short name for messages ("Slurm")
    label: str = ""
    #: directive names the plugin sets itself; configuring them would break job tracking
    reserved_directives: frozenset[str] = frozenset()
    #: file names, inside ``output_dir``, of the scheduler's own output of the job
    output_file = "scheduler.out"
    error_file = "scheduler.err"

    def check_directives(self, directives: Mapping[str, str]) -> None:
        """Refuse, at start-up, directives this plugin must control itself."""
        clash = sorted(set(directives) & self.reserved_directives)
        if clash:
            names = ", ".join(f"job_{key}" for key in clash)
            raise ConfigurationError(f"{self.label}: {names} cannot be configured; LWR sets it")

    @abstractmethod
    def submit_argv(
        self,
        script: str,
        name: str,
        directives: Mapping[str, str],
        native_args: Sequence[str] = (),
        output_dir: str | None = None,
    ) -> list[str]:
        """The command that submits ``script`` under the job name ``name``."""

    @abstractmethod
    def parse_submit(self, stdout: str) -> str:
        """The job id from the submit command's output; SubmitError if there is none."""

    @abstractmethod
    def status_argv(self, ids: Sequence[str]) -> list[str]:
        """One command that reports on all of ``ids``, including jobs that have just finished."""

    @abstractmethod
    def parse_status(self, stdout: str) -> dict[str, SchedulerStatus]:
        """Status per job id; jobs the scheduler no longer knows are simply absent."""

    def status_error_is_benign(self, result: CommandResult) -> bool:
        """True if a failed status command only means "none of these jobs exist any more"."""
        return False

    @abstractmethod
    def cancel_argv(self, job_id: str) -> list[str]:
        """The command that stops a queued or running job."""

    def cancel_error_is_benign(self, result: CommandResult) -> bool:
        """True if a failed cancel only means the job had already finished or gone."""
        return False

    @abstractmethod
    def find_argv(self, name: str) -> list[str]:
        """A command listing the jobs called ``name`` (to find one launched just before a crash)."""

    @abstractmethod
    def parse_find(self, stdout: str, name: str) -> list[str]:
        """The ids of jobs called ``name``, oldest first."""


def map_state(
    table: Mapping[str, JobState], native: str, default: JobState, label: str
) -> JobState:
    """Look ``native`` up in ``table``; an unlisted state is logged and mapped to ``default``."""
    state = table.get(native)
    if state is None:
        log.warning(
            "%s reported the unknown job state %r; treating it as %s", label, native, default.value
        )
        return default
    return state


def split_flag(key: str) -> str:
    """``partition`` -> ``--partition``, ``p`` -> ``-p``, ``mail_type`` -> ``--mail-type``."""
    if len(key) == 1:
        return f"-{key}"
    return "--" + key.replace("_", "-")


def is_false(value: str) -> bool:
    """A directive value that means "do not pass this flag"."""
    return value.strip().lower() in FALSE_WORDS


def is_true(value: str) -> bool:
    """A directive value that means "pass this flag without a value"."""
    return value.strip().lower() in TRUE_WORDS or value.strip() == ""
