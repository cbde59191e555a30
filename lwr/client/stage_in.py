"""Staging a job in: send (or describe) every file it needs and rewrite its paths.

The order follows Galaxy's client, because later registrations must win: tool files, index files
found on the command line, job-directory files, inputs (with extra files and metadata), the
working and metadata directories, then the renames of outputs, config files and the version file,
and last the config files themselves, uploaded with their rewritten contents.

Each file gets the action its rule gives (:class:`~lwr.client.actions.ClientActions`):
``transfer`` uploads it, ``copy``/``symlink`` place it on a shared disk at the path the server
names, ``remote_*`` describe it in ``remote_staging.setup`` for the server to fetch, ``none``
leaves its path alone and ``rewrite`` maps it to the rule's destination directory.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwr.client.actions import ClientActions, Decision
from lwr.client.api import JobClient
from lwr.client.job import JobDescription
from lwr.client.rewrite import (
    PathRewriter,
    directory_files,
    is_referenced,
    path_tokens,
    references_below,
    remote_join,
    unique_prefix,
    unstructured_files,
)
from lwr.errors import StagingError

log = logging.getLogger(__name__)

COMMAND_VERSION_FILENAME = "COMMAND_VERSION"

#: file type -> the key of the setup answer naming its directory on the server
_DIRECTORY_KEYS = {
    "input": "inputs_directory",
    "unstructured": "unstructured_files_directory",
    "tool": "tools_directory",
    "config": "configs_directory",
    "workdir": "working_directory",
    "metadata": "metadata_directory",
    "jobdir": "job_directory",
    "output": "outputs_directory",
    "output_workdir": "working_directory",
    "output_metadata": "metadata_directory",
}


@dataclass
class StagedFile:
    """One file handled while staging in, for reports and tests."""

    local: str
    file_type: str
    name: str
    action: str
    remote: str | None


@dataclass
class StagedJob:
    """The outcome of staging in: what to submit, and what happened to each file."""

    command_line: str
    setup_entries: list[dict[str, Any]] = field(default_factory=list)
    files: list[StagedFile] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)


class StageIn:
    """Stages one job's inputs against a server that has answered ``setup``."""

    def __init__(
        self,
        client: JobClient,
        actions: ClientActions,
        description: JobDescription,
        setup_answer: dict[str, Any],
        scratch: Path,
    ) -> None:
        self.client = client
        self.actions = actions
        self.job = description
        self.answer = setup_answer
        props = setup_answer.get("system_properties") or {}
        self.separator = str(props.get("separator") or setup_answer.get("path_separator") or "/")
        self.scratch = scratch
        self.rewriter = PathRewriter()
        self.result = StagedJob(command_line=description.command_line)
        self.configs = {p: Path(p).read_text(encoding="utf-8") for p in description.config_files}

    @property
    def texts(self) -> list[str]:
        return [self.job.command_line, *self.configs.values()]

    def run(self) -> StagedJob:
        """Stage everything; return the rewritten command line and the server-side entries."""
        self._tool_files()
        if self.job.rewrite_paths:
            self._unstructured_files()
        for path in self.job.job_directory_files:
            self._stage(path, "jobdir", os.path.basename(path))
        self._inputs()
        for directory, file_type in (
            (self.job.working_directory, "workdir"),
            (self.job.metadata_directory, "metadata"),
        ):
            if directory and os.path.isdir(directory):
                self._directory(directory, file_type, directory)
        if self.job.rewrite_paths:
            self._output_renames()
        self.result.command_line = self.rewriter.apply(self.job.command_line)
        self._config_files()
        self.result.renames = dict(self.rewriter.renames)
        return self.result

    # -- each kind of file ----------------------------------------------------------------------

    def _tool_files(self) -> None:
        tool_dir = self.job.tool_dir
        if not tool_dir:
            return
        tool_dir = os.path.abspath(tool_dir)
        names = [os.path.relpath(p, tool_dir) for p in references_below(self.texts, tool_dir)]
        names += [n for n in self.job.tool_files if n not in names]
        for name in names:
            path = os.path.join(tool_dir, name)
            if os.path.isdir(path):
                self._directory(path, "tool", tool_dir, register=False)
            elif os.path.exists(path):
                self._stage(path, "tool", name, always_rewrite=True)

    def _unstructured_files(self) -> None:
        found: dict[str, Decision] = {}
        for token in path_tokens(self.texts):
            rule = self.actions.rule_for(token, "unstructured")
            if rule is not None and rule.path is not None and token not in found:
                found[token] = self.actions.decide(token, "unstructured")
        for path, decision in found.items():
            if not decision.moves:
                self._rewrite(path, decision)
                continue
            if decision.depth == 0 and not os.path.isfile(path):
                continue  # a directory or a missing file: nothing to send
            prefix = unique_prefix(path)
            for local, name in unstructured_files(path, decision.depth).items():
                self._stage(local, "unstructured", os.path.join(prefix, name), decision=decision)

    def _inputs(self) -> None:
        done: set[str] = set()
        for item in self.job.inputs:
            if item.path in done:
                continue
            done.add(item.path)
            if self.job.rewrite_paths and not is_referenced(self.texts, item.path):
                log.debug("input %s is not referenced by the command: not staged", item.path)
                continue
            if item.kind == "extra_files":
                if os.path.isdir(item.path):
                    self._directory(item.path, "input", os.path.dirname(item.path))
            elif item.kind == "metadata":
                self._stage(item.path, "input", "metadata_" + os.path.basename(item.path))
            else:
                self._stage(item.path, "input", os.path.basename(item.path))

    def _directory(
        self, directory: str, file_type: str, relative_to: str, *, register: bool = True
    ) -> None:
        """Every file below ``directory``, named relative to ``relative_to``; the directory's
        own path is rewritten too, so a command naming the directory finds it."""
        decision = self.actions.decide(directory, file_type)
        for name in directory_files(directory):
            local = os.path.join(directory, name)
            self._stage(local, file_type, os.path.relpath(local, relative_to))
        if register and decision.moves and self.job.rewrite_paths:
            name = os.path.relpath(directory, relative_to)
            base = self._remote_directory(file_type)
            self.rewriter.add(directory, base if name == os.curdir else self._join(base, name))

    def _output_renames(self) -> None:
        outputs = self.job.outputs
        for path in outputs.output_files:
            self._rename(path, "output", os.path.basename(path))
        if self.job.working_directory:
            for path in outputs.output_files:
                name = os.path.basename(path)
                local = os.path.join(self.job.working_directory, name)
                self._rename(local, "output_workdir", name)
        for path in self.job.config_files:
            self._rename(path, "config", os.path.basename(path))
        if outputs.version_file:
            self._rename(outputs.version_file, "output", COMMAND_VERSION_FILENAME)

    def _config_files(self) -> None:
        for index, (path, contents) in enumerate(self.configs.items()):
            decision = self.actions.decide(path, "config")
            rewritten = self.rewriter.apply(contents) if self.job.rewrite_paths else contents
            if not decision.moves:
                continue
            name = os.path.basename(path)
            scratch = self.scratch / f"config-{index}-{name}"
            remote = self.client.upload_contents(rewritten.encode("utf-8"), "config", name, scratch)
            self.result.files.append(StagedFile(path, "config", name, "transfer", remote))

    # -- the actions ----------------------------------------------------------------------------

    def _stage(
        self,
        path: str,
        file_type: str,
        name: str,
        *,
        decision: Decision | None = None,
        always_rewrite: bool = False,
    ) -> None:
        decision = decision or self.actions.decide(path, file_type)
        if not decision.moves:
            self._rewrite(path, decision)
            return
        if not os.path.isfile(path):
            log.warning("%s %s does not exist: not staged", file_type, path)
            return
        kind = decision.action_type
        if kind == "transfer":
            remote = self.client.upload(Path(path), file_type, name)
        elif kind in ("copy", "symlink"):
            symlink = kind == "symlink"
            remote = self.client.copy_in(Path(path), file_type, name, symlink=symlink)
        elif decision.is_remote:
            remote = self._remote_entry(path, file_type, name, decision)
        else:
            raise StagingError(f"{file_type} {path}: action {kind!r} cannot stage files")
        log.debug("staged %s %s as %s (%s)", file_type, path, remote, kind)
        self.result.files.append(StagedFile(path, file_type, name, kind, remote))
        if self.job.rewrite_paths or always_rewrite:
            self.rewriter.add(path, remote)

    def _remote_entry(self, path: str, file_type: str, name: str, decision: Decision) -> str:
        """Describe the file in ``remote_staging.setup``: the server fetches it itself."""
        kind = decision.action_type
        action: dict[str, Any] = {"action_type": kind, "path": path, "source": {"path": path}}
        if kind in ("remote_transfer", "remote_transfer_tus"):
            action["url"] = self.actions.rules.url_for(path, file_type)
        action.update(decision.action.params)
        entry = {"name": self._join("", name).lstrip(self.separator), "type": file_type}
        self.result.setup_entries.append({**entry, "action": action})
        return self._join(self._remote_directory(file_type), name)

    def _rename(self, path: str, file_type: str, name: str) -> None:
        decision = self.actions.decide(path, file_type)
        if decision.moves:
            self.rewriter.add(path, self._join(self._remote_directory(file_type), name))
        else:
            self._rewrite(path, decision)

    def _rewrite(self, path: str, decision: Decision) -> None:
        if decision.action_type == "rewrite" and self.job.rewrite_paths:
            rewritten = decision.action.rewrite(os.path.abspath(path))
            if rewritten:
                self.rewriter.add(path, rewritten)
                self.result.files.append(StagedFile(path, "", "", "rewrite", rewritten))

    def _remote_directory(self, file_type: str) -> str:
        key = _DIRECTORY_KEYS[file_type]
        directory = self.answer.get(key)
        if not directory:
            raise StagingError(f"the server's setup answer has no {key!r} for {file_type} files")
        return str(directory)

    def _join(self, directory: str, name: str) -> str:
        return remote_join(self.separator, directory, name)
