"""Configuration: raw ini/yaml strings in, frozen typed dataclasses out.

This is the only module that reads raw option dictionaries. It runs once at start-up, validates
everything, and refuses unknown keys by name, so a typo in ``server.ini`` is an error at start
instead of a silently ignored setting. Defaults live in :data:`APP_DEFAULTS` and nowhere else (a
test checks ``server.ini.sample`` against them).
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwr.errors import ConfigurationError

DEFAULT_MANAGER = "_default_"

#: every ``[app:main]`` option with its default, as the string an ini file would hold
APP_DEFAULTS: Mapping[str, str] = {
    "private_token": "",
    "staging_directory": "files/staging",
    "persistence_directory": "files/persisted_data",
    "job_managers_config": "job_managers.ini",
    "assign_ids": "none",
    "tool_dependency_dir": "dependencies",
    "file_cache_dir": "",
    "ssl_pem": "",
    "max_upload_size": "0",
    "maximum_stream_size": "1048576",
    "message_queue_url": "",
}

#: keys PasteDeploy or our runners may put beside the app's own options
_PASTE_KEYS = frozenset({"here", "__file__", "use", "paste.app_factory", "debug"})

ASSIGN_IDS = ("none", "uuid")


@dataclass(frozen=True)
class ManagerConfig:
    """One ``[manager:NAME]`` section: the backend type and its (string) options."""

    name: str
    type: str = "queued_python"
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppConfig:
    """The validated application configuration (the ``[app:main]`` section plus managers)."""

    here: Path
    private_token: str | None
    staging_directory: Path
    persistence_directory: Path
    job_managers_config: Path | None
    assign_ids: str
    tool_dependency_dir: Path | None
    file_cache_dir: Path | None
    ssl_pem: str | None
    max_upload_size: int | None
    maximum_stream_size: int
    message_queue_url: str | None
    managers: tuple[ManagerConfig, ...]


def load_app_config(
    raw: Mapping[str, Any], here: str | os.PathLike[str] | None = None
) -> AppConfig:
    """Validate ``raw`` (the app section's options) into an :class:`AppConfig`.

    Relative paths are resolved against ``here`` (the directory of server.ini; PasteDeploy passes
    it), so the server behaves the same whatever directory it is started from.
    """
    base = Path(here or raw.get("here") or os.getcwd()).resolve()
    unknown = sorted(k for k in raw if k not in APP_DEFAULTS and k not in _PASTE_KEYS)
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) in the app configuration: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(APP_DEFAULTS))})"
        )
    values = {k: str(raw.get(k, default)).strip() for k, default in APP_DEFAULTS.items()}

    assign_ids = values["assign_ids"].lower()
    if assign_ids not in ASSIGN_IDS:
        raise ConfigurationError(f"assign_ids must be one of {ASSIGN_IDS}, not {assign_ids!r}")

    jm_raw = values["job_managers_config"]
    jm_path = _path(base, jm_raw)
    explicit_jm = "job_managers_config" in raw
    if jm_path is not None and not jm_path.exists():
        if explicit_jm:
            raise ConfigurationError(f"job_managers_config {str(jm_path)!r} does not exist")
        jm_path = None
    managers = load_managers_ini(jm_path) if jm_path else (ManagerConfig(DEFAULT_MANAGER),)

    return AppConfig(
        here=base,
        private_token=values["private_token"] or None,
        staging_directory=_required_path(base, values["staging_directory"], "staging_directory"),
        persistence_directory=_required_path(
            base, values["persistence_directory"], "persistence_directory"
        ),
        job_managers_config=jm_path,
        assign_ids=assign_ids,
        tool_dependency_dir=_path(base, values["tool_dependency_dir"]),
        file_cache_dir=_path(base, values["file_cache_dir"]),
        ssl_pem=values["ssl_pem"] or None,
        max_upload_size=_int(values["max_upload_size"], "max_upload_size") or None,
        maximum_stream_size=_int(values["maximum_stream_size"], "maximum_stream_size"),
        message_queue_url=values["message_queue_url"] or None,
        managers=managers,
    )


def load_managers_ini(path: Path) -> tuple[ManagerConfig, ...]:
    """Read ``[manager:NAME]`` sections; any other section is an error naming it."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep option case
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error) as exc:
        raise ConfigurationError(f"cannot read job managers config {str(path)!r}: {exc}") from exc
    managers = []
    for section in parser.sections():
        kind, _, name = section.partition(":")
        if kind.strip() != "manager" or not name.strip():
            raise ConfigurationError(
                f"{path}: section [{section}] is not of the form [manager:NAME]"
            )
        options = dict(parser.items(section))
        manager_type = options.pop("type", "queued_python").strip()
        managers.append(ManagerConfig(name.strip(), manager_type, options))
    if not managers:
        raise ConfigurationError(f"{path}: no [manager:NAME] section")
    return tuple(managers)


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


def _path(base: Path, value: str) -> Path | None:
    if not value:
        return None
    return (base / os.path.expanduser(value)).resolve()


def _required_path(base: Path, value: str, key: str) -> Path:
    path = _path(base, value)
    if path is None:
        raise ConfigurationError(f"{key} must not be empty")
    return path
