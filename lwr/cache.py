"""The server-side file cache: one upload of a file serves every job that needs it.

Galaxy's caching client (``InputCachingJobClient``) asks, per input path, whether it should upload
it (``PUT /cache``), uploads it once (``POST /cache``), polls until it is ready
(``GET /cache/status`` answers a token), then has each job take its copy by sending that token with
the upload request instead of a body (``cache_token``).

A token is the SHA-256 of the client's address and path, so it is exactly 64 lowercase hex digits;
anything else is refused before it touches the disk, which is what keeps a token from naming an
arbitrary file (Pulsar joins whatever it is given to the cache directory and copies it into the
job). Concurrent inserts of the same file store it once: each upload lands in its own temporary
file and the first complete one is renamed into place. Inserted files are made read-only, and a job
never gets the cache's own inode: it gets a reflink (copy-on-write clone) where the filesystem has
them, else a copy, so a job that makes its input writable and writes to it cannot change what later
jobs receive (a hard link could: mode bits do not stop a job that chmods, nor root). The cache is
bounded by ``file_cache_size``: after each insert the least recently used files go first.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

from lwr.errors import InvalidRequestError, NotFoundError, StagingError
from lwr.managers import safe_path

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

    def fill(self, token: str, out_fd: int) -> int:
        """Write the cached file ``token`` into the open file ``out_fd``; return its size.

        The job gets bytes of its own (a reflink where the filesystem shares blocks copy-on-write,
        else a copy), never the cache's inode: a job that makes its input writable and writes to
        it changes its copy only.
        """
        source = self._file(token)
        with self._lock:  # eviction must not remove the file between the check and the open
            try:
                src_fd = os.open(source, os.O_RDONLY | safe_path.NOFOLLOW)
            except FileNotFoundError:
                raise NotFoundError(
                    f"no cached file for token {token[:12]}…; insert it first"
                ) from None
            os.utime(src_fd)  # most recently used
        try:
            size = os.fstat(src_fd).st_size
            try:
                if not clone(src_fd, out_fd):
                    copy_range(src_fd, out_fd, size)
            except OSError as exc:
                raise StagingError(f"copying cached file {token[:12]}… failed: {exc}") from None
        finally:
            os.close(src_fd)
        return size

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


#: ``FICLONE`` from ``<linux/fs.h>``: share all blocks of one file with another, copy-on-write
FICLONE = 0x40049409


def clone(src_fd: int, out_fd: int) -> bool:
    """Reflink ``src_fd`` into ``out_fd`` (btrfs, XFS, bcachefs…); False where it is not offered."""
    if not sys.platform.startswith("linux"):
        return False
    import fcntl  # POSIX only: the module loads on Windows too

    try:
        fcntl.ioctl(out_fd, FICLONE, src_fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.EPERM):
            return False
        raise
    return True


def copy_range(src_fd: int, out_fd: int, size: int) -> None:
    """Copy ``size`` bytes inside the kernel (``copy_file_range``, else ``sendfile``, else read)."""
    copied = 0
    mover = getattr(os, "copy_file_range", None)
    while copied < size:
        try:
            if mover is not None:
                count = mover(src_fd, out_fd, size - copied, copied, copied)
            else:
                count = os.sendfile(out_fd, src_fd, copied, size - copied)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            mover = None
            count = _copy_some(src_fd, out_fd, copied, size - copied)
        if count <= 0:
            raise OSError(errno.EIO, f"the cached file shrank to {copied} bytes while copied")
        copied += count


def _copy_some(src_fd: int, out_fd: int, offset: int, count: int) -> int:
    data = os.pread(src_fd, min(count, 4 * 1024 * 1024), offset)
    os.pwrite(out_fd, data, offset)
    return len(data)
