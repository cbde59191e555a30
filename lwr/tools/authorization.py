"""What a job may do under the tool whitelist: the checks the manager runs at each step.

Without ``tool_config_files`` every job is allowed (the server is then protected by its private
token and firewall alone, as before). With it, a job must name a whitelisted tool at setup, may
only upload tool files identical to the administrator's copies, and its config files and command
line must match the tool's validators. Each refusal is a
:class:`~lwr.errors.ToolNotAllowedError` whose ``rule`` says which check refused it:

``tool_id``
    the tool id is not in the toolbox (or none was sent);
``tool_version``
    the id is known but not in the version the client asked for;
``tool_file``
    an uploaded tool file is not one of the tool's files, or differs from it;
``configfile_validator``
    a config file (or a file the client put directly in the job directory, such as Galaxy's
    ``tool_script.sh``) does not match the tool's ``<configfile_validator>`` of that name;
``command_validator``
    the command line does not match the tool's ``<command_validator>`` (or it has none).

The checks run as early as the protocol allows (setup, each upload, submit) and once more over
the staged directories before the job is queued, because server-side staging (message-queue mode)
and the file cache place files without an upload request.
"""

from __future__ import annotations

import filecmp
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from lwr.errors import ToolNotAllowedError
from lwr.tools.toolbox import Tool, ToolBox
from lwr.tools.validator import JobPaths

log = logging.getLogger(__name__)

#: upload types the whitelist checks as they arrive
UPLOAD_CHECKS = ("tool", "config", "jobdir")

#: config files larger than this are refused unread when the tool validates them
MAX_CONFIG_FILE = 1024 * 1024


class Authorization:
    """The checks for one job; this base class allows everything (no whitelist configured)."""

    def check_tool_file(self, name: str, path: Path) -> None:
        """``path`` holds the upload of tool file ``name`` (relative to the tool directory)."""

    def check_config_file(self, job_root: Path, name: str, path: Path) -> None:
        """``path`` holds config file ``name`` of the job in ``job_root``."""

    def check_command(self, job_root: Path, command_line: str) -> None:
        """``command_line`` is what the job would run (the job directory token substituted)."""

    def check_staged(self, job_root: Path, job_files: Iterable[str] = ()) -> None:
        """Everything now in ``tool_files/`` and ``configs/``, and the client's ``job_files``.

        ``job_files`` are the client's files directly in the job directory (``jobdir``
        uploads): Galaxy sends the tool's command there as ``tool_script.sh`` and runs it from
        there, so they are held to the config-file validator of their name too.
        """
        for name, path in _files(job_root / "tool_files"):
            self.check_tool_file(name, path)
        for name, path in _files(job_root / "configs"):
            self.check_config_file(job_root, name, path)
        for name in job_files:
            self.check_config_file(job_root, name, job_root / name)


ALLOW_ALL = Authorization()


class ToolAuthorization(Authorization):
    """The checks for a job of one whitelisted tool."""

    def __init__(self, tool: Tool) -> None:
        self.tool = tool

    def check_tool_file(self, name: str, path: Path) -> None:
        tool_dir = self.tool.tool_dir.resolve()
        original = (tool_dir / name).resolve()
        if not original.is_relative_to(tool_dir) or not original.is_file():
            self._refuse("tool_file", f"{name!r} is not a file of the tool's directory {tool_dir}")
        if not filecmp.cmp(original, path, shallow=False):
            self._refuse("tool_file", f"{name!r} differs from the server's copy {original}")

    def check_config_file(self, job_root: Path, name: str, path: Path) -> None:
        validator = self.tool.config_validators.get(name)
        if validator is None:
            return  # only the command decides whether an unvalidated config file is used
        rule = "configfile_validator"
        if path.stat().st_size > MAX_CONFIG_FILE:
            self._refuse(rule, f"config file {name!r} is larger than {MAX_CONFIG_FILE} bytes")
        text = path.read_bytes().decode("utf-8", errors="replace")
        if not validator.matches(JobPaths(str(job_root)), text):
            self._refuse(rule, f"config file {name!r} does not match <configfile_validator>")

    def check_command(self, job_root: Path, command_line: str) -> None:
        validator = self.tool.command_validator
        if validator is None:
            self._refuse("command_validator", "the tool declares no <command_validator>")
        if not validator.matches(JobPaths(str(job_root)), command_line):
            self._refuse("command_validator", "the command line does not match it")

    def _refuse(self, rule: str, detail: str) -> NoReturn:
        raise ToolNotAllowedError(rule, f"{self.tool.describe()}: {detail}")


class ToolAuthorizer:
    """Hands out the :class:`Authorization` of a job from its tool id and version."""

    def __init__(self, toolbox: ToolBox | None = None) -> None:
        self.toolbox = toolbox

    @property
    def enabled(self) -> bool:
        return self.toolbox is not None

    def authorization(self, tool_id: str | None, tool_version: str | None) -> Authorization:
        """The job's checks; refuses (``tool_id``/``tool_version``) a tool not whitelisted."""
        if self.toolbox is None:
            return ALLOW_ALL
        if not tool_id:
            raise ToolNotAllowedError("tool_id", "the job names no tool (tool_id is required)")
        tools = self.toolbox.versions(tool_id)
        if not tools:
            raise ToolNotAllowedError("tool_id", f"tool {tool_id!r} is not in tool_config_files")
        if not tool_version:
            return ToolAuthorization(tools[0])
        for tool in tools:
            if tool.version == tool_version:
                return ToolAuthorization(tool)
        known = ", ".join(sorted(repr(t.version) for t in tools))
        raise ToolNotAllowedError(
            "tool_version",
            f"tool {tool_id!r} is whitelisted in version(s) {known}, not {tool_version!r}",
        )


def _files(directory: Path) -> Iterator[tuple[str, Path]]:
    """(name relative to ``directory`` with ``/`` separators, path) of every regular file."""
    for parent, _dirs, names in os.walk(directory):
        for name in sorted(names):
            path = Path(parent) / name
            yield path.relative_to(directory).as_posix(), path


def check_upload(
    authorization: Authorization, job_root: Path, file_type: str, name: str, path: Path
) -> None:
    """Check one uploaded file as it arrives; a refused upload is deleted before the answer."""
    try:
        if file_type == "tool":
            authorization.check_tool_file(name, path)
        elif file_type in ("config", "jobdir"):
            authorization.check_config_file(job_root, name, path)
    except ToolNotAllowedError:
        path.unlink(missing_ok=True)
        raise


@contextmanager
def refusals_logged(what: str) -> Iterator[None]:
    """Log a refusal for the operator: the client only sees its answer (or a 403 code)."""
    try:
        yield
    except ToolNotAllowedError as exc:
        log.warning("%s: %s", what, exc.message)
        raise
