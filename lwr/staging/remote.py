"""Server-side staging: the server fetches a job's inputs and sends its outputs back itself.

This is what message-queue mode relies on (and what an HTTP client asks for with ``remote_*``
actions): the client describes each input in ``remote_staging["setup"]`` and its expected outputs
in ``remote_staging["client_outputs"]`` plus the action rules (``remote_staging["action_mapper"]``),
and the server moves the files around the job's run. Every file written lands through
:meth:`JobDirectory.resolve` (so no client-supplied name escapes the job) and via a temporary file
renamed into place, so both stages are idempotent: after a restart they simply run again.

This module decides *which* files move and with which options; how each action moves bytes lives
in one small class per action (:mod:`lwr.staging.movers`, :mod:`lwr.staging.ssh`,
:mod:`lwr.staging.tus`, :mod:`lwr.staging.objectstore`), found through
:data:`lwr.registry.STAGING_ACTIONS`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lwr.errors import InvalidRequestError, LwrError, StagingError
from lwr.managers.directory import JobDirectory
from lwr.registry import STAGING_ACTIONS, lookup
from lwr.staging.actions import UNSET
from lwr.staging.movers import ClientFile, Mover, StagingSettings, discard
from lwr.staging.outputs import Output, plan_outputs
from lwr.staging.rules import RuleSet, load_rules
from lwr.staging.transfer import RetryPolicy

log = logging.getLogger(__name__)

#: the kinds of file stage_out may send
OUTPUT_PATH_TYPES = ("output", "output_workdir", "output_metadata", "output_jobdir")

_SSH_KEYS = ("ssh_user", "ssh_host", "ssh_port", "ssh_key")


class RemoteStager:
    """Implements :class:`lwr.managers.stateful.Stager` with the movers of each action."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        remote_copy_allowed_paths: Sequence[Path] = (),
        settings: StagingSettings | None = None,
    ) -> None:
        self.settings = settings or StagingSettings(
            policy or RetryPolicy(), tuple(remote_copy_allowed_paths)
        )
        self.policy = self.settings.policy
        self._movers: dict[str, Mover] = {}
        self._lock = threading.Lock()
        if self.settings.object_store_config_file is not None:
            self.mover("remote_object_store_copy")  # a broken object store stops the start-up

    # -- the Stager protocol ----------------------------------------------------------------

    def needs_stage_in(self, launch: Mapping[str, Any]) -> bool:
        return bool(_remote_staging(launch).get("setup"))

    def stage_in(self, launch: Mapping[str, Any], directory: JobDirectory) -> None:
        """Perform every ``remote_staging["setup"]`` entry, in order."""
        staging = _remote_staging(launch)
        entries = staging.get("setup") or []
        if not isinstance(entries, list):
            raise StagingError("remote_staging.setup must be a list")
        rules = self._rules(staging) if staging.get("action_mapper") else RuleSet()
        for index, entry in enumerate(entries):
            self._stage_entry(index, entry, directory, staging, rules)
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
                self._send(output, action.action_type, action.params, directory, staging, rules)
                sent += 1
            except LwrError as exc:
                failures.append(exc.message)
        missing = [p for p in plan.missing if rules.action_for(p, "output").is_remote]
        if missing:
            failures.insert(0, f"expected output(s) not produced: {', '.join(missing)}")
        if failures:
            raise StagingError("; ".join(failures))
        log.info("sent %d output(s) from %s", sent, directory.root)

    def mover(self, action_type: str) -> Mover:
        """The (shared) mover of ``action_type``; a StagingError for a name no mover has."""
        with self._lock:
            found = self._movers.get(action_type)
            if found is None:
                if action_type not in STAGING_ACTIONS:
                    raise StagingError(
                        f"action {action_type!r} is not supported by this server (supported: "
                        f"{', '.join(sorted(STAGING_ACTIONS))}, message)"
                    )
                mover_class: type[Mover] = lookup("staging action", STAGING_ACTIONS, action_type)
                found = self._movers[action_type] = mover_class(self.settings)
            return found

    # -- inputs -----------------------------------------------------------------------------

    def _stage_entry(
        self,
        index: int,
        entry: Any,
        directory: JobDirectory,
        staging: Mapping[str, Any],
        rules: RuleSet,
    ) -> None:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("action"), Mapping):
            raise StagingError(f"setup entry {index} is not a mapping with an 'action'")
        action: Mapping[str, Any] = entry["action"]
        action_type = action.get("action_type")
        source: Mapping[str, Any] = action.get("source") or {}
        if not isinstance(source, Mapping):
            source = {}
        source_path = source.get("path") or action.get("path")
        name = entry.get("name") or (os.path.basename(str(source_path)) if source_path else None)
        file_type = str(entry.get("type"))
        label = f"setup entry {index}, input {name!r} ({file_type}, {action_type})"
        try:
            target = directory.resolve(file_type, str(name or ""))
        except LwrError as exc:
            raise StagingError(f"{label}: {exc.message}") from None
        if target.is_dir():
            raise StagingError(f"{label}: {target} is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if action_type == "message":
            _write_atomically(target, str(action.get("contents") or "").encode("utf-8"))
            return
        try:
            mover = self.mover(str(action_type))
            path = str(source_path or "")  # the HTTP actions need only their URL
            rule_params = rules.action_for(path or None, file_type).params
            params = {**_ssh_defaults(staging, rules), **rule_params, **_set(action)}
            if isinstance(source.get("object_store_ref"), Mapping):
                params["object_store_ref"] = source["object_store_ref"]
            mover.fetch(ClientFile(path, file_type, params), target)
        except LwrError as exc:
            raise StagingError(f"{label}: {exc.message}") from None

    # -- outputs ----------------------------------------------------------------------------

    def _send(
        self,
        output: Output,
        action_type: str,
        rule_params: Mapping[str, Any],
        directory: JobDirectory,
        staging: Mapping[str, Any],
        rules: RuleSet,
    ) -> None:
        what = f"output {output.name!r} ({output.output_type}, {action_type})"
        try:
            source = directory.resolve(output.output_type, output.name, for_output=True)
        except LwrError as exc:
            raise StagingError(f"{what}: {exc.message}") from None
        if not source.is_file():
            raise StagingError(f"{what}: {source} does not exist")
        params = {**_ssh_defaults(staging, rules), **rule_params}
        if rules.files_endpoint:
            params["url"] = rules.url_for(output.path, output.output_type)
        try:
            mover = self.mover(action_type)
            mover.send(source, ClientFile(output.path, output.output_type, params))
        except LwrError as exc:
            raise StagingError(f"{what}: {exc.message}") from None

    # -- helpers ----------------------------------------------------------------------------

    def _rules(self, staging: Mapping[str, Any]) -> RuleSet:
        mapper = staging.get("action_mapper")
        if mapper is not None and not isinstance(mapper, Mapping):
            raise InvalidRequestError("remote_staging.action_mapper must be a mapping")
        return load_rules(mapper, error=InvalidRequestError, origin="remote_staging.action_mapper")


def _remote_staging(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    staging = launch.get("remote_staging")
    return staging if isinstance(staging, Mapping) else {}


def _set(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the ones the client left unset (None, ``__UNSET__``)."""
    return {k: v for k, v in values.items() if v is not None and v != UNSET}


def _ssh_defaults(staging: Mapping[str, Any], rules: RuleSet) -> dict[str, Any]:
    """The client-wide ssh options: the action mapper's, else the key sent beside it.

    Galaxy's client puts the destination's ``ssh_*`` settings at the top of the action mapper,
    and the key once more as ``remote_staging["ssh_key"]``; a rule's own settings override them.
    """
    defaults = _set({k: staging.get(k) for k in _SSH_KEYS})
    defaults.update(_set({k: rules.ssh.get(k) for k in _SSH_KEYS}))
    return defaults


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=".message-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, target)
    except OSError as exc:
        discard(tmp_name)
        raise StagingError(f"writing {target} failed: {exc}") from None
