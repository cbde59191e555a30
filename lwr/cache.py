"""The server-side file cache: one upload of a file serves every job that needs it.

Galaxy's caching client (``InputCachingJobClient``) asks, per input path, whether it should upload
it (``PUT /cache``), uploads it once (``POST /cache``), polls until it is ready
(``GET /cache/status`` answers a token), then has each job take its copy by sending that token with
the upload request instead of a body (``cache_token``).

A token is the SHA-256 of the client's address and path, so it is exactly 64 lowercase hex digits;
anything else is refused before it touches the disk, which is what keeps a token from naming an
arbitrary file (Pulsar joins whatever it is given to the cache directory and copies it into the
job). Concurrent inserts of the same file store it once: each upload lands in its own temporary
file and the first complete one is renamed into place. Inserted files are made read-only and handed
to jobs as hard links when possible (instant, no extra space; a tool cannot write through them
without first changing their mode), otherwise copied. The cache is bounded by ``file_cache_size``:
after each insert the least recently used files go first.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

from lwr.errors import InvalidRequestError, NotFoundError, StagingError

log = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"[0-9a-f]{64}")
#: how long a "you upload it" answer holds before another client may be asked instead
CLAIM_SECONDS = 600.0


class FileCache:
    """Files keyed by (client address, client path), stored once, evicted least recently used."""

    def __init__(self, directory: Path, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.files = directory / "files"
        self.incoming = directory / "incoming"
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._claims: dict[str, float] = {}
        self.files.mkdir(parents=True, exist_ok=True)
        self.incoming.mkdir(parents=True, exist_ok=True)
        for leftover in self.incoming.iterdir():  # uploads interrupted by a restart
            leftover.unlink(missing_ok=True)

    @staticmethod
    def token(client: str, path: str) -> str:
        return hashlib.sha256(f"{client}\x00{path}".encode()).hexdigest()

    def _file(self, token: str) -> Path:
        if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
            raise InvalidRequestError("invalid cache token (expected 64 hexadecimal digits)")
        return self.files / token

    # -- the three routes -------------------------------------------------------------------

    def available(self, client: str, path: str) -> dict[str, object]:
        """``GET /cache/status``: the token, and whether the file is there yet."""
        token = self.token(client, path)
        return {"token": token, "ready": self._file(token).exists()}

    def required(self, client: str, path: str) -> bool:
        """``PUT /cache``: True for exactly one caller until it inserts (or its claim expires)."""
        token = self.token(client, path)
        now = time.monotonic()
        with self._lock:
            if self._file(token).exists():
                return False
            claimed = self._claims.get(token)
            if claimed is not None and now - claimed < CLAIM_SECONDS:
                return False
            self._claims[token] = now
            return True

    def incoming_path(self) -> Path:
        """A fresh temporary name for an upload in progress (same filesystem as the cache)."""
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self.incoming)
        os.close(fd)
        return Path(name)

    def commit(self, client: str, path: str, uploaded: Path) -> str:
        """``POST /cache``: move a complete upload into the cache (once), then evict if needed."""
        token = self.token(client, path)
        target = self._file(token)
        with self._lock:
            self._claims.pop(token, None)
            if target.exists():
                uploaded.unlink(missing_ok=True)  # a concurrent insert won; keep its copy
                return token
            os.chmod(uploaded, stat.S_IRUSR | stat.S_IRGRP)
            os.replace(uploaded, target)
            self._evict(keep=target)
        log.info("file cache: stored %s for %s", token[:12], client)
        return token

    def abandon(self, client: str, path: str, uploaded: Path) -> None:
        """A failed insert: forget the claim so the next client is asked to upload instead."""
        with self._lock:
            self._claims.pop(self.token(client, path), None)
        uploaded.unlink(missing_ok=True)

    # -- use by jobs --------------------------------------------------------------------------

    def place(self, token: str, target: Path) -> int:
        """Give ``target`` the cached file ``token`` (hard link, else copy); return its size."""
        source = self._file(token)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".cache-{os.getpid()}-{threading.get_ident()}-{token[:16]}"
        with self._lock:  # eviction must not remove the file between the check and the link
            if not source.exists():
                raise NotFoundError(f"no cached file for token {token[:12]}…; insert it first")
            os.utime(source)  # most recently used
            try:
                tmp.unlink(missing_ok=True)
                os.link(source, tmp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise StagingError(f"linking cached file to {target} failed: {exc}") from None
                try:
                    shutil.copyfile(source, tmp)
                except OSError as copy_exc:
                    tmp.unlink(missing_ok=True)
                    raise StagingError(
                        f"copying cached file to {target} failed: {copy_exc}"
                    ) from None
        os.replace(tmp, target)
        return target.stat().st_size

    # -- size bound ---------------------------------------------------------------------------

    def size(self) -> int:
        return sum(entry.stat().st_size for entry in self.files.iterdir())

    def _evict(self, keep: Path) -> None:
        """Drop least recently used files until the cache fits (never the one just stored)."""
        if self.max_bytes is None:
            return
        entries = []
        for entry in self.files.iterdir():
            try:
                info = entry.stat()
            except FileNotFoundError:
                continue
            entries.append((info.st_mtime, info.st_size, entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if entry == keep:
                continue
            entry.unlink(missing_ok=True)
            total -= size
            log.info("file cache: evicted %s (%d bytes)", entry.name[:12], size)
