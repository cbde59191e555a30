"""Admission: the checks a job must pass before it may run, apart from its life cycle.

Two independent policies judge a job, both off (everything admitted) unless configured: Pulsar's
``user_auth`` (*who* submitted it, :mod:`lwr.auth`) and the tool whitelist (*what* it runs,
:mod:`lwr.tools`). They live here rather than in :class:`~lwr.managers.stateful.StatefulManager`
so that the manager reads as states and transitions, and each check is called at the one moment
the protocol gives it: setup (tool id), upload (tool and config files), submit (who, the command
and every staged file) and after server-side stage-in (files no upload check saw).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwr.errors import LwrError
from lwr.managers.directory import JobDirectory
from lwr.persistence.store import JobRecord
from lwr.tools.authorization import (
    UPLOAD_CHECKS,
    Authorization,
    ToolAuthorizer,
    check_upload,
    refusals_logged,
)

if TYPE_CHECKING:
    from lwr.auth.checker import UserAuth

log = logging.getLogger(__name__)


class Admission:
    """One manager's admission checks; raises an :class:`~lwr.errors.LwrError` to refuse."""

    def __init__(
        self,
        manager: str,
        user_auth: UserAuth | None = None,
        authorizer: ToolAuthorizer | None = None,
    ) -> None:
        self.manager = manager
        self.user_auth = user_auth
        self.authorizer = authorizer or ToolAuthorizer()

    def check_tool(self, job_id: str, tool_id: str | None, tool_version: str | None) -> None:
        """At setup: the tool must be on the whitelist (when there is one)."""
        with refusals_logged(f"job {self.manager}/{job_id}"):
            self.authorizer.authorization(tool_id, tool_version)

    def authorization(self, record: JobRecord) -> Authorization:
        """The tool whitelist's checks for this job (its tool id and version from setup)."""
        setup = (record.launch or {}).get("setup") or {}
        return self.authorizer.authorization(setup.get("tool_id"), setup.get("tool_version"))

    def check_upload(
        self, record: JobRecord, root: Path, file_type: str, name: str, path: Path
    ) -> None:
        """Refuse (the caller deletes) an uploaded tool or config file the whitelist forbids."""
        if self.authorizer.enabled and file_type in UPLOAD_CHECKS:
            with refusals_logged(f"job {self.manager}/{record.job_id}"):
                check_upload(self.authorization(record), root, file_type, name, path)

    def check_queued(self, record: JobRecord, directory: JobDirectory, command: str) -> None:
        """At submit: every file in the job and the command line (job directory substituted)."""
        with refusals_logged(f"job {self.manager}/{record.job_id}"):
            authorization = self.authorization(record)
            authorization.check_staged(directory.root, directory.top_level_files())
            authorization.check_command(directory.root, command)

    def check_staged(self, record: JobRecord, directory: JobDirectory) -> None:
        """After server-side stage-in: the files no upload check saw."""
        self.authorization(record).check_staged(directory.root, directory.top_level_files())

    def identify(self, job_id: str, launch: Mapping[str, Any]) -> Mapping[str, Any]:
        """``launch`` with the submitter ``user_auth`` established; raises to refuse the job.

        May wait on Galaxy's token endpoint and the JWKS: call it outside any lock.
        """
        if self.user_auth is None:
            return launch
        try:
            identity = self.user_auth.check(self.manager, job_id, launch)
        except LwrError as exc:  # UserAuthError, IdentityServiceError
            log.warning("job %s/%s: refused by user_auth: %s", self.manager, job_id, exc.message)
            raise
        if identity is None:
            return launch
        return {**launch, "user_auth": {"username": identity.username, "method": identity.method}}
