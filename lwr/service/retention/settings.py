"""The ``retention_*`` options (their defaults live here, spread into ``APP_DEFAULTS``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lwr.errors import ConfigurationError

RETENTION_DEFAULTS: Mapping[str, str] = {
    "retention_store": "directory",
    "retention_directory": "",
    "retention_scan_interval": "60",
    "retention_s3_bucket": "",
    "retention_s3_prefix": "lwr-archive/",
    "retention_s3_endpoint_url": "",
    "retention_s3_storage_class": "GLACIER",
    "retention_s3_restore_days": "1",
}


@dataclass(frozen=True)
class RetentionConfig:
    """Where archives go and how often the worker looks for due jobs."""

    store: str = "directory"
    #: the ``directory`` store's root; None: ``<persistence_directory>/archive``
    directory_option: Path | None = None
    scan_interval: float = 60.0
    s3_bucket: str = ""
    s3_prefix: str = "lwr-archive/"
    s3_endpoint_url: str = ""
    s3_storage_class: str = "GLACIER"
    s3_restore_days: int = 1
    #: set by the app from ``persistence_directory`` when ``retention_directory`` is empty
    default_directory: Path = Path("archive")

    @property
    def directory(self) -> Path:
        return self.directory_option or self.default_directory


def parse_retention(values: Mapping[str, str], base: Path) -> RetentionConfig:
    directory = values["retention_directory"].strip()
    return RetentionConfig(
        store=values["retention_store"].strip() or "directory",
        directory_option=(base / directory).resolve() if directory else None,
        scan_interval=_positive(values["retention_scan_interval"], "retention_scan_interval"),
        s3_bucket=values["retention_s3_bucket"].strip(),
        s3_prefix=values["retention_s3_prefix"].strip(),
        s3_endpoint_url=values["retention_s3_endpoint_url"].strip(),
        s3_storage_class=values["retention_s3_storage_class"].strip() or "GLACIER",
        s3_restore_days=int(_positive(values["retention_s3_restore_days"], "restore days")),
    )


def _positive(value: str, key: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{key} must be a number, not {value!r}") from None
    if number <= 0:
        raise ConfigurationError(f"{key} must be positive, not {value!r}")
    return number
