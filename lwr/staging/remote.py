"""Server-side staging: the server fetches a job's inputs and sends its outputs back itself.

This is what message-queue mode relies on (and what an HTTP client asks for with
``remote_transfer``/``remote_copy`` actions): the client describes each input in
``remote_staging["setup"]`` and its expected outputs in ``remote_staging["client_outputs"]`` plus
the action rules (``remote_staging["action_mapper"]``), and the server moves the files around the
job's run. Every file written lands through :meth:`JobDirectory.resolve` (so no client-supplied
name escapes the job) and via a temporary file renamed into place, so both stages are idempotent:
after a restart they simply run again.

``remote_copy`` reads and writes paths on the server's own disks, named by the client. Unchecked,
that lets any client read any file the server can read into a job (and then download it) or write
a job's output over any file the server can write. So it is refused unless the admin lists the
directories it may touch (``remote_copy_allowed_paths``); paths are compared after resolving
symlinks.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lwr.errors import InvalidRequestError, LwrError, StagingError
from lwr.managers.directory import JobDirectory
from lwr.staging.actions import URL_ACTIONS
from lwr.staging.outputs import Output, plan_outputs
from lwr.staging.rules import RuleSet, load_rules
from lwr.staging.transfer import RetryPolicy, fetch, push, redact_url

log = logging.getLogger(__name__)

#: the kinds of file stage_out may send
OUTPUT_PATH_TYPES = ("output", "output_workdir", "output_metadata", "output_jobdir")


class RemoteStager:
    """Implements :class:`lwr.managers.stateful.Stager` over HTTP and local copies."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        remote_copy_allowed_paths: Sequence[Path] = (),
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.allowed = tuple(os.path.realpath(p) for p in remote_copy_allowed_paths)

    # -- the Stager protocol ----------------------------------------------------------------

    def needs_stage_in(self, launch: Mapping[str, Any]) -> bool:
        return bool(_remote_staging(launch).get("setup"))

    def stage_in(self, launch: Mapping[str, Any], directory: JobDirectory) -> None:
        """Perform every ``remote_staging["setup"]`` entry, in order."""
        entries = _remote_staging(launch).get("setup") or []
        if not isinstance(entries, list):
            raise StagingError("remote_staging.setup must be a list")
        for index, entry in enumerate(entries):
            self._stage_entry(index, entry, directory)
        log.info("staged %d input(s) into %s", len(entries), directory.root)

    def needs_stage_out(self, launch: Mapping[str, Any]) -> bool:
        staging = _remote_staging(launch)
        if not staging.get("client_outputs") or not staging.get("action_mapper"):
            return False
        try:
            return self._rules(staging).has_remote_actions_for(OUTPUT_PATH_TYPES)
        except LwrError:
            return True  # let stage_out report the bad rules as the job's failure

    def stage_out(
        self, launch: Mapping[str, Any], directory: JobDirectory, status: Mapping[str, Any]
    ) -> None:
        """Send every output whose action is server-side; missing or failed ones fail the job."""
        staging = _remote_staging(launch)
        rules = self._rules(staging)
        plan = plan_outputs(staging.get("client_outputs") or {}, status)
        failures: list[str] = []
        sent = 0
        for output in plan.outputs:
            action = rules.action_for(output.path, output.output_type)
            if not action.is_remote:
                continue  # the client collects it
            try:
                self._send(output, action.action_type, rules, directory)
                sent += 1
            except LwrError as exc:
                failures.append(exc.message)
        missing = [p for p in plan.missing if rules.action_for(p, "output").is_remote]
        if missing:
            failures.insert(0, f"expected output(s) not produced: {', '.join(missing)}")
        if failures:
            raise StagingError("; ".join(failures))
        log.info("sent %d output(s) from %s", sent, directory.root)

    # -- inputs -----------------------------------------------------------------------------

    def _stage_entry(self, index: int, entry: Any, directory: JobDirectory) -> None:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("action"), Mapping):
            raise StagingError(f"setup entry {index} is not a mapping with an 'action'")
        action: Mapping[str, Any] = entry["action"]
        action_type = action.get("action_type")
        source: Mapping[str, Any] = action.get("source") or {}
        if not isinstance(source, Mapping):
            source = {}
        source_path = source.get("path") or action.get("path")
        name = entry.get("name") or (os.path.basename(str(source_path)) if source_path else None)
        file_type = entry.get("type")
        label = f"input {name!r} ({file_type}, {action_type})"
        try:
            target = directory.resolve(str(file_type), str(name or ""))
        except LwrError as exc:
            raise StagingError(f"setup entry {index}, {label}: {exc.message}") from None
        if target.is_dir():
            raise StagingError(f"setup entry {index}, {label}: {target} is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if action_type == "message":
            _write_atomically(target, str(action.get("contents") or "").encode("utf-8"))
        elif action_type in URL_ACTIONS:
            url = action.get("url")
            if not isinstance(url, str) or not url:
                raise StagingError(f"setup entry {index}, {label}: no 'url' to fetch from")
            size = fetch(url, target, self.policy)
            log.info("fetched %s from %s (%d bytes)", target, redact_url(url), size)
        elif action_type == "remote_copy":
            if not source_path:
                raise StagingError(f"setup entry {index}, {label}: no source path to copy")
            self._copy(self._allowed(str(source_path), "read"), target)
        else:
            raise StagingError(
                f"setup entry {index}, {label}: action {action_type!r} is not supported by this "
                "server (supported: remote_transfer, remote_copy, message)"
            )

    # -- outputs ----------------------------------------------------------------------------

    def _send(
        self, output: Output, action_type: str, rules: RuleSet, directory: JobDirectory
    ) -> None:
        what = f"output {output.name!r} ({output.output_type})"
        try:
            source = directory.resolve(output.output_type, output.name, for_output=True)
        except LwrError as exc:
            raise StagingError(f"{what}: {exc.message}") from None
        if not source.is_file():
            raise StagingError(f"{what}: {source} does not exist")
        if action_type == "remote_transfer":
            try:
                url = rules.url_for(output.path, output.output_type)
            except LwrError as exc:
                raise StagingError(f"{what}: {exc.message}") from None
            size = push(url, source, self.policy)
            log.info("sent %s to %s (%d bytes)", source, redact_url(url), size)
        elif action_type == "remote_copy":
            destination = Path(self._allowed(output.path, "write"))
            destination.parent.mkdir(parents=True, exist_ok=True)
            self._copy(str(source), destination)
        else:
            raise StagingError(
                f"{what}: action {action_type!r} is not supported by this server "
                "(supported: remote_transfer, remote_copy)"
            )

    # -- helpers ----------------------------------------------------------------------------

    def _rules(self, staging: Mapping[str, Any]) -> RuleSet:
        mapper = staging.get("action_mapper")
        if mapper is not None and not isinstance(mapper, Mapping):
            raise InvalidRequestError("remote_staging.action_mapper must be a mapping")
        return load_rules(mapper, error=InvalidRequestError, origin="remote_staging.action_mapper")

    def _allowed(self, path: str, why: str) -> str:
        """``path`` if ``remote_copy`` may ``why`` (read/write) it, else a StagingError."""
        if not os.path.isabs(path):
            raise StagingError(f"remote_copy: {path!r} is not an absolute path")
        real = os.path.realpath(path)
        if not any(
            real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.allowed
        ):
            where = ", ".join(self.allowed) or "nowhere (remote_copy_allowed_paths is empty)"
            raise StagingError(
                f"remote_copy may not {why} {path!r}: "
                f"it is outside the allowed directories ({where})"
            )
        return real

    @staticmethod
    def _copy(source: str, target: Path) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=".copy-", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp_name)
            os.replace(tmp_name, target)
        except OSError as exc:
            _unlink(tmp_name)
            raise StagingError(f"copying {source} to {target} failed: {exc}") from None
        log.info("copied %s to %s", source, target)


def _remote_staging(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    staging = launch.get("remote_staging")
    return staging if isinstance(staging, Mapping) else {}


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=".message-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, target)
    except OSError as exc:
        _unlink(tmp_name)
        raise StagingError(f"writing {target} failed: {exc}") from None


def _unlink(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass
