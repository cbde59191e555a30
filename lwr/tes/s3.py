"""``s3://`` inputs and outputs of TES tasks, with boto3.

boto3 is the AWS SDK, and it reads its settings the standard way — ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_DEFAULT_REGION``, ``~/.aws/config``, and ``AWS_ENDPOINT_URL_S3``
for an S3-compatible store (MinIO, Ceph) — so LWR adds no option of its own: put them in
``local_env.sh``. It is optional (``pip install 'lwr[s3]'``); without it an ``s3://`` task is
refused with 400 when created. Downloads land in a temporary file renamed into place.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lwr.errors import LwrError, StagingError

log = logging.getLogger(__name__)


def available() -> bool:
    """Whether boto3 can be imported here (``s3://`` is then a supported scheme)."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        return False
    return True


class S3Storage:
    """Fetches and sends task files from and to S3 (one client, shared by the staging threads)."""

    def __init__(self) -> None:
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")  # thread-safe once made
        return self._client

    def fetch(self, url: str, target: Path, progress: Callable[[int], None] | None = None) -> None:
        """Download ``url`` to ``target``. ``progress`` (a plan's budget) is told the object's
        size before any byte is fetched, and any bytes beyond it once they are: it may raise,
        and then nothing is kept."""
        bucket, key = split(url)
        fd, tmp_name = tempfile.mkstemp(prefix=".s3-", dir=target.parent)
        os.close(fd)
        try:
            expected = 0
            if progress is not None:
                head = self.client().head_object(Bucket=bucket, Key=key)
                expected = int(head.get("ContentLength") or 0)
                progress(expected)
            self.client().download_file(bucket, key, tmp_name)
            if progress is not None and os.path.getsize(tmp_name) > expected:
                progress(os.path.getsize(tmp_name) - expected)  # replaced by a bigger one
            os.replace(tmp_name, target)
        except LwrError:
            _discard(tmp_name)
            raise
        except Exception as exc:
            _discard(tmp_name)
            raise StagingError(f"GET {url} failed: {_said(exc)}") from None
        log.info("fetched %s from %s", target, url)

    def send(self, source: Path, url: str) -> None:
        bucket, key = split(url)
        try:
            self.client().upload_file(str(source), bucket, key)
        except Exception as exc:
            raise StagingError(f"PUT {url} failed: {_said(exc)}") from None
        log.info("sent %s to %s", source, url)

    def keys_below(self, url: str) -> Iterator[tuple[str, str]]:
        """(relative name, object URL) of every object under the prefix ``url`` (a directory)."""
        bucket, prefix = split(url)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        try:
            pages = (
                self.client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=bucket, Prefix=prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if not key.endswith("/"):
                        yield key[len(prefix) :], f"s3://{bucket}/{key}"
        except Exception as exc:
            raise StagingError(f"listing {url} failed: {_said(exc)}") from None


def split(url: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StagingError(f"not an s3://bucket/key URL: {url!r}")
    return parts.netloc, parts.path.lstrip("/")


def _said(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _discard(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass
