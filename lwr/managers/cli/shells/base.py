"""The shell interface and the one place that runs a child process with a deadline.

Every scheduler command goes through :func:`run_with_deadline`, so none of them can hang the
manager: a command that outlives its timeout is killed with its whole process group (an ``ssh``
that waits on a dead network, a ``qstat`` stuck on an unresponsive server).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lwr.errors import ConfigurationError, SubmitError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind; ``argv`` is the command as the caller asked for it."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.returncode == 0


class Shell(ABC):
    """Runs argv lists somewhere: on this host, or on a submit host reached over ssh.

    ``options`` are the manager's ``shell_*`` options with the prefix removed (``hostname``,
    ``port``…); a shell refuses the ones it does not understand, so a typo fails at start-up.
    """

    #: option names (without ``shell_``) this shell accepts
    accepted_options: frozenset[str] = frozenset()

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - self.accepted_options)
        if unknown:
            names = ", ".join(f"shell_{key}" for key in unknown)
            raise ConfigurationError(
                f"{type(self).__name__} does not accept option(s) {names}"
                " (they belong to shell_plugin = ssh)"
            )
        self.options = options

    @abstractmethod
    def execute(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> CommandResult:
        """Run ``argv`` and wait at most ``timeout`` seconds.

        Returns the result whatever the exit code; raises SubmitError only when the command could
        not be started or did not finish in time.
        """

    def describe(self) -> str:
        """Where commands run, for log lines and error messages."""
        return "localhost"


def run_with_deadline(
    argv: Sequence[str],
    timeout: float,
    input: str | None = None,
    shown_argv: Sequence[str] | None = None,
) -> CommandResult:
    """Run ``argv`` on this host; kill its process group if it outlives ``timeout``.

    ``shown_argv`` is the command reported in the result and in errors (the ssh shell reports the
    remote command, not the ssh wrapper around it). stdin is closed unless ``input`` is given, so
    a child that wants to prompt (``ssh`` asking for a password) fails instead of waiting.
    """
    argv = list(argv)
    shown = tuple(shown_argv if shown_argv is not None else argv)
    try:
        # a new session: on timeout the whole group dies, not only the direct child
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise SubmitError(f"cannot run {argv[0]!r}: {exc}", argv=shown) from exc
    try:
        stdout, stderr = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        raise SubmitError(
            f"command timed out after {timeout:g} s",
            argv=shown,
            returncode=None,
            stdout=stdout or "",
            stderr=stderr or "",
        ) from exc
    log.debug("%s exited %s", shown[0] if shown else "?", proc.returncode)
    return CommandResult(shown, proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill the child's process group; the child may already be gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - only if the child changed its credentials
        proc.kill()
