"""The ``s3`` archive store: objects in an S3 bucket, in the Glacier storage class.

Glacier is what long-kept, rarely read results cost least in; its price is that an object must be
restored before it can be read. :meth:`S3Store.prepare` asks for an ``Expedited`` restore first
(minutes) and, when S3 refuses it (``GlacierExpeditedRetrievalNotAvailable``: no expedited
capacity), falls back to ``Standard`` (hours) rather than failing; the worker polls until the
object is readable. Each object carries its SHA-256 in its metadata, checked after upload and
again after download.

Tests run against moto's S3 server (an emulator: no AWS endpoint is reachable from CI). moto
accepts every restore tier and restores at once, so the refusal is injected at
:meth:`S3Store.request_restore`, the one seam that talks to ``RestoreObject``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwr.errors import ConfigurationError
from lwr.service.retention.stores import ArchiveStore

if TYPE_CHECKING:
    from lwr.service.retention.settings import RetentionConfig

log = logging.getLogger(__name__)

#: restore tiers, tried in order; a refusal of one falls back to the next
TIERS = ("Expedited", "Standard")
#: the answers meaning "not this tier now", as opposed to a real failure
REFUSALS = frozenset({"GlacierExpeditedRetrievalNotAvailable"})
_COLD = frozenset({"GLACIER", "DEEP_ARCHIVE"})


class S3Store(ArchiveStore):
    def __init__(self, config: RetentionConfig) -> None:
        try:
            import boto3
        except ImportError as exc:
            raise ConfigurationError(
                "retention_store = s3 needs boto3 (pip install 'lwr[s3]')"
            ) from exc
        if not config.s3_bucket:
            raise ConfigurationError("retention_store = s3 needs retention_s3_bucket")
        self.bucket = config.s3_bucket
        self.prefix = config.s3_prefix
        self.storage_class = config.s3_storage_class
        self.restore_days = config.s3_restore_days
        self.client: Any = boto3.client("s3", endpoint_url=config.s3_endpoint_url or None)
        #: the tier the last restore request was accepted with (for logs and tests)
        self.last_tier: str | None = None

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}{self.suffix}"

    def put(self, key: str, source: Path, sha256: str) -> None:
        self.client.upload_file(
            str(source),
            self.bucket,
            self._key(key),
            ExtraArgs={"StorageClass": self.storage_class, "Metadata": {"sha256": sha256}},
        )

    def check(self, key: str, size: int, sha256: str) -> bool:
        head = self._head(key)
        return (
            head is not None
            and int(head.get("ContentLength", -1)) == size
            and head.get("Metadata", {}).get("sha256") == sha256
        )

    def prepare(self, key: str) -> bool:
        """True when the object can be read; otherwise ask for (or wait on) its restore."""
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(f"archive {key} is not in bucket {self.bucket}")
        if head.get("StorageClass") not in _COLD:
            return True
        restore = head.get("Restore") or ""
        if 'ongoing-request="false"' in restore:
            return True
        if 'ongoing-request="true"' in restore:
            return False
        self._restore(key)
        again = self._head(key) or {}
        return 'ongoing-request="false"' in (again.get("Restore") or "")

    def _restore(self, key: str) -> None:
        from botocore.exceptions import ClientError

        for tier in TIERS:
            try:
                self.request_restore(key, tier)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "RestoreAlreadyInProgress":
                    return
                if code in REFUSALS and tier != TIERS[-1]:
                    log.warning(
                        "retention: %s restore of %s refused (%s); trying the next tier",
                        tier,
                        key,
                        code,
                    )
                    continue
                raise
            self.last_tier = tier
            log.info("retention: %s restore of %s requested", tier, key)
            return

    def request_restore(self, key: str, tier: str) -> None:
        """S3 ``RestoreObject`` with ``tier`` (the seam tests refuse a tier at)."""
        self.client.restore_object(
            Bucket=self.bucket,
            Key=self._key(key),
            RestoreRequest={"Days": self.restore_days, "GlacierJobParameters": {"Tier": tier}},
        )

    def fetch(self, key: str, target: Path) -> None:
        self.client.download_file(self.bucket, self._key(key), str(target))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self) -> list[str]:
        found: list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                found.append(item["Key"][len(self.prefix) : -len(self.suffix)])
        return sorted(found)

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=self._key(key)))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
