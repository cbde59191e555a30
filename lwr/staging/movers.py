"""The server's half of each ``remote_*`` file action: one small class per action.

A :class:`Mover` knows how to bring one of the client's files into a job (``fetch``) and how to
send one of the job's files back to where the client wants it (``send``). :mod:`lwr.staging.remote`
decides *which* files move and picks the mover by the action's name from
:data:`lwr.registry.STAGING_ACTIONS`; the movers only move bytes, each by its own route (HTTP,
tus, scp, rsync, a local copy, an object store). Every failure is a
:class:`~lwr.errors.StagingError` that says what the peer or the external program said, because
that message becomes the job's failure reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwr.errors import StagingError
from lwr.staging.actions import UNSET
from lwr.staging.transfer import RetryPolicy, fetch, push, redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagingSettings:
    """What the admin configured for server-side staging (built once from the app config)."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    remote_copy_allowed_paths: Sequence[Path] = ()
    #: OpenSSH's ``StrictHostKeyChecking``: yes, accept-new or no
    ssh_host_key_policy: str = "yes"
    ssh_known_hosts: Path | None = None
    object_store_config_file: Path | None = None


@dataclass(frozen=True)
class ClientFile:
    """One of the client's files: its path on the client's side, its kind, the action's options.

    ``params`` holds what the action carries besides its name: ``url`` for the HTTP actions,
    ``ssh_user``/``ssh_host``/``ssh_port``/``ssh_key`` for the ssh ones, ``object_store_ref``
    for the object store (unset values already dropped).
    """

    path: str
    file_type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def param(self, key: str) -> Any:
        """The option ``key``, or None when the client left it unset."""
        value = self.params.get(key)
        return None if value is None or value == UNSET or value == "" else value


class Mover(ABC):
    """Moves files for one action type; built once per server, used by many jobs at once."""

    #: the action's name, for messages
    action_type: str = ""

    def __init__(self, settings: StagingSettings) -> None:
        self.settings = settings

    @abstractmethod
    def fetch(self, file: ClientFile, target: Path) -> None:
        """Bring ``file`` to ``target`` (whose directory exists), atomically."""

    @abstractmethod
    def send(self, source: Path, file: ClientFile) -> None:
        """Send the job's ``source`` to where the client wants ``file``."""

    def _url(self, file: ClientFile) -> str:
        url = file.param("url")
        if not isinstance(url, str):
            raise StagingError(f"{self.action_type}: no 'url' for {file.path} (no files_endpoint?)")
        return url


class HttpMover(Mover):
    """``remote_transfer``: GET from the client's files endpoint, POST back as multipart."""

    action_type = "remote_transfer"

    def fetch(self, file: ClientFile, target: Path) -> None:
        url = self._url(file)
        size = fetch(url, target, self.settings.policy)
        log.info("fetched %s from %s (%d bytes)", target, redact_url(url), size)

    def send(self, source: Path, file: ClientFile) -> None:
        url = self._url(file)
        size = push(url, source, self.settings.policy)
        log.info("sent %s to %s (%d bytes)", source, redact_url(url), size)


class CopyMover(Mover):
    """``remote_copy``: a file system copy on this machine, inside the allowed directories only.

    Unchecked, a client could copy any file the server can read into a job (and download it) or
    write a job's output over any file the server can write; so every path must lie, after
    resolving symlinks, below one of ``remote_copy_allowed_paths``.
    """

    action_type = "remote_copy"

    def __init__(self, settings: StagingSettings) -> None:
        super().__init__(settings)
        self.allowed = tuple(os.path.realpath(p) for p in settings.remote_copy_allowed_paths)

    def fetch(self, file: ClientFile, target: Path) -> None:
        copy_atomically(self._allowed(file.path, "read"), target)

    def send(self, source: Path, file: ClientFile) -> None:
        destination = Path(self._allowed(file.path, "write"))
        destination.parent.mkdir(parents=True, exist_ok=True)
        copy_atomically(str(source), destination)

    def check(self, path: str, why: str) -> str:
        """The real path of ``path`` if it may be ``why`` (read/write), else a StagingError."""
        return self._allowed(path, why)

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


def copy_atomically(source: str, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file renamed into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=".copy-", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp_name)
        os.replace(tmp_name, target)
    except OSError as exc:
        discard(tmp_name)
        raise StagingError(f"copying {source} to {target} failed: {exc}") from None
    log.info("copied %s to %s", source, target)


def discard(name: str | os.PathLike[str]) -> None:
    """Remove a file if it is still there (a temporary file after a failure)."""
    try:
        os.unlink(name)
    except OSError:
        pass
