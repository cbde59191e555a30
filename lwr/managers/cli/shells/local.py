"""Run scheduler commands on the LWR host itself (the host is a submit host of the cluster)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lwr.managers.cli.shells.base import CommandResult, Shell, run_with_deadline

log = logging.getLogger(__name__)


class LocalShell(Shell):
    """Runs commands as child processes of the server; accepts no options."""

    def execute(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> CommandResult:
        """Run ``argv`` here without a shell in between, so no argument is ever re-parsed."""
        return run_with_deadline(argv, timeout, input=input)
