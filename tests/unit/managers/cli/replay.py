"""Captured scheduler output and a shell that replays it, for the CLI manager's unit tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from lwr.errors import SubmitError
from lwr.managers.cli.shells.base import CommandResult, Shell

DATA = Path(__file__).resolve().parents[3] / "data" / "cli"

Reply = CommandResult | SubmitError | Callable[[Sequence[str]], CommandResult]


def data(relative: str) -> str:
    """The text of one file under tests/data/cli."""
    return (DATA / relative).read_text()


def captured(prefix: str) -> tuple[int, str, str]:
    """(returncode, stdout, stderr) of a command captured as PREFIX.{returncode,stdout,stderr}."""
    return (
        int(data(f"{prefix}.returncode.txt").strip()),
        data(f"{prefix}.stdout.txt"),
        data(f"{prefix}.stderr.txt"),
    )


class ReplayShell(Shell):
    """Answers each command from a queue of replies per program name, recording every call.

    A reply is a CommandResult (its argv replaced by the real one), a SubmitError to raise (as a
    timeout would), or a callable given the argv.
    """

    def __init__(self) -> None:
        super().__init__({})
        self.replies: dict[str, list[Reply]] = {}
        self.calls: list[list[str]] = []

    def reply(self, program: str, *replies: Reply) -> None:
        """Queue replies for ``program``; the last one is repeated when the queue runs dry."""
        self.replies.setdefault(program, []).extend(replies)

    def execute(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> CommandResult:
        self.calls.append(list(argv))
        queue = self.replies.get(argv[0])
        if not queue:
            raise AssertionError(f"unexpected command {list(argv)}")
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, SubmitError):
            raise reply
        if callable(reply) and not isinstance(reply, CommandResult):
            return reply(argv)
        return CommandResult(tuple(argv), reply.returncode, reply.stdout, reply.stderr)

    def programs(self) -> list[str]:
        """The program names called so far, in order."""
        return [call[0] for call in self.calls]


def result(stdout: str = "", returncode: int = 0, stderr: str = "") -> CommandResult:
    """A CommandResult whose argv the ReplayShell fills in."""
    return CommandResult((), returncode, stdout, stderr)
