"""The ``directory`` archive store: compressed tar files under ``retention_directory``.

Each archive is written to a temporary name beside its final one, flushed to disk (``fsync`` of
the file, then of its directory after the rename), and renamed into place: a crash leaves the
old archive or the new one, never a torn file under the final name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from lwr.service.retention.stores import ArchiveStore, file_sha256

if TYPE_CHECKING:
    from lwr.service.retention.settings import RetentionConfig

_TEMPORARY = ".partial-"


class DirectoryStore(ArchiveStore):
    def __init__(self, config: RetentionConfig) -> None:
        self.root = config.directory
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / f"{key}{self.suffix}"

    def put(self, key: str, source: Path, sha256: str) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f"{_TEMPORARY}{final.name}")
        with open(source, "rb") as src, open(temporary, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
        _fsync_directory(final.parent)

    def check(self, key: str, size: int, sha256: str) -> bool:
        path = self._path(key)
        try:
            if path.stat().st_size != size:
                return False
        except FileNotFoundError:
            return False
        return file_sha256(path) == sha256

    def fetch(self, key: str, target: Path) -> None:
        shutil.copyfile(self._path(key), target)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        found = []
        for path in self.root.rglob(f"*{self.suffix}"):
            if not path.name.startswith(_TEMPORARY):
                found.append(str(path.relative_to(self.root))[: -len(self.suffix)])
        return sorted(found)


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (where directories can be opened, i.e. not Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
