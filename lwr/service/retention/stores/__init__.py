"""Archive stores: where archived results go. Chosen by ``retention_store`` through
:data:`lwr.registry.ARCHIVE_STORES` (``directory``, the default; ``s3``).

A store holds whole archive files under keys the worker makes (``manager/owner/job.seq``): the
same job attempt always gets the same key, so an archive written again after a crash replaces
the first one instead of adding a second.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from lwr.registry import ARCHIVE_STORES, lookup

if TYPE_CHECKING:
    from lwr.service.retention.settings import RetentionConfig


class ArchiveStore:
    """What the worker needs of a store; every method is safe to call again after a crash."""

    #: what archives' names end with
    suffix = ".tar.gz"

    def put(self, key: str, source: Path, sha256: str) -> None:
        """Store the file ``source`` under ``key`` (replacing one there), durably."""
        raise NotImplementedError

    def check(self, key: str, size: int, sha256: str) -> bool:
        """Whether ``key`` holds exactly the archive of this size and digest."""
        raise NotImplementedError

    def prepare(self, key: str) -> bool:
        """Ask for the archive to become readable (a Glacier restore); True once it is."""
        return True

    def fetch(self, key: str, target: Path) -> None:
        """Copy the archive into the local file ``target``."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove the archive; one already gone is not an error."""
        raise NotImplementedError

    def keys(self) -> list[str]:
        """Every archive held (for tests and the admin)."""
        raise NotImplementedError


def open_store(config: RetentionConfig) -> ArchiveStore:
    """The configured store."""
    store_class = lookup("retention store", ARCHIVE_STORES, config.store)
    store: ArchiveStore = store_class(config)
    return store


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
