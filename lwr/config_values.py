"""Typed option values: the parsers that turn the configuration's strings into numbers and paths.

Kept apart from :mod:`lwr.config` so a settings module (pool, balancer, drivers) can use the same
checks without importing the whole application configuration, and without an import cycle: this
module imports nothing from LWR but the errors and the leaf modules it validates against.
Every parser raises :class:`~lwr.errors.ConfigurationError` naming the option.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lwr.egress import Network, parse_networks
from lwr.errors import ConfigurationError
from lwr.proxy import Proxy, parse_option
from lwr.pulsar_version import PULSAR_PROTOCOL_VERSION, version_key

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0", "")


def load_yaml_file(path: Path, what: str = "") -> Any:
    """The YAML document at ``path`` (None when empty); unreadable or invalid: ConfigurationError
    naming ``what`` and the path, so every YAML file of the configuration fails alike."""
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read {what}{str(path)!r}: {exc}") from exc


def parse_concurrency(value: str, cpu_count: int | None = None) -> int:
    """``max_concurrent_jobs``: a positive integer, or ``*`` for the number of cores."""
    value = value.strip()
    if value == "*":
        return max(1, cpu_count or os.cpu_count() or 1)
    number = _int(value, "max_concurrent_jobs")
    if number < 1:
        raise ConfigurationError(f"max_concurrent_jobs must be at least 1 or '*', not {value!r}")
    return number


def parse_seconds(value: str, key: str) -> float:
    """A non-negative number of seconds."""
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigurationError(f"{key} must be a number of seconds, not {value!r}") from None
    if seconds < 0:
        raise ConfigurationError(f"{key} must not be negative, not {value!r}")
    return seconds


def _int(value: str, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{key} must be an integer, not {value!r}") from None


def _size(value: str, key: str) -> int:
    """A number of bytes: an integer that is not negative."""
    number = _int(value, key)
    if number < 0:
        raise ConfigurationError(f"{key} must not be negative, not {value!r}")
    return number


def _bool(value: str, key: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"{key} must be true or false, not {value!r}")


def _host_key_policy(value: str) -> str:
    """``staging_ssh_strict_host_key_checking`` as OpenSSH's ``StrictHostKeyChecking`` value."""
    lowered = value.lower()
    if lowered == "accept-new":
        return "accept-new"
    if lowered in _TRUE or not lowered:  # empty: the default, never "off"
        return "yes"
    if lowered in _FALSE:
        return "no"
    raise ConfigurationError(
        f"staging_ssh_strict_host_key_checking must be true, false or accept-new, not {value!r}"
    )


def _path_list(base: Path, value: str) -> tuple[Path, ...]:
    """A comma- or newline-separated list of directories (``remote_copy_allowed_paths``)."""
    items = [item.strip() for item in value.replace("\n", ",").split(",")]
    return tuple(path for item in items if item and (path := _path(base, item)) is not None)


def _joined(value: Any) -> str:
    """An option as the string an ini file would hold; a list (from YAML) is comma-joined."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def _existing(paths: tuple[Path, ...], key: str) -> tuple[Path, ...]:
    for path in paths:
        _existing_file(path, key)
    return paths


def _existing_file(path: Path | None, key: str) -> Path | None:
    """A configured file must be there at start-up, not fail (or be skipped) at the first job."""
    if path is not None and not path.is_file():
        raise ConfigurationError(f"{key}: {str(path)!r} is not a file")
    return path


def _path(base: Path, value: str) -> Path | None:
    if not value:
        return None
    return (base / os.path.expanduser(value)).resolve()


def _required_path(base: Path, value: str, key: str) -> Path:
    path = _path(base, value)
    if path is None:
        raise ConfigurationError(f"{key} must not be empty")
    return path


def _networks(values: Mapping[str, str], key: str) -> tuple[Network, ...]:
    """An ``*_allowed_networks`` option (lwr.egress); a bad entry is a ConfigurationError."""
    try:
        return parse_networks(values[key])
    except ValueError as exc:
        raise ConfigurationError(f"{key}: {exc}") from None


def _proxy(values: Mapping[str, str], key: str) -> Proxy | None:
    """A ``*_proxy`` option (lwr.proxy): empty, or ``http(s)://[user:password@]host:port``;
    a bad one is a ConfigurationError that does not quote the credentials."""
    return parse_option(key, values[key])


def _ca_file(base: Path, value: str, key: str) -> Path | None:
    """A CA bundle option (PEM, relative to the configuration's directory); None: unset.

    Loaded once here, so a missing, unreadable or certificate-less file stops the start with
    the option's name instead of failing every https transfer later.
    """
    path = _path(base, value)
    if path is None:
        return None
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"{key} {str(path)!r} has no usable CA certificate (PEM expected): {exc}"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"{key} {str(path)!r} cannot be read: {exc}") from None
    return path


def _pulsar_version(value: str) -> str | None:
    """``pulsar_protocol_version``: empty, or a release no newer than the one LWR implements."""
    if not value:
        return None
    try:
        key = version_key(value)
    except ValueError as exc:
        raise ConfigurationError(f"pulsar_protocol_version: {exc}") from None
    if key > version_key(PULSAR_PROTOCOL_VERSION):
        raise ConfigurationError(
            f"pulsar_protocol_version {value!r} is newer than the Pulsar protocol LWR implements "
            f"({PULSAR_PROTOCOL_VERSION}); it may only report an older one"
        )
    return value
