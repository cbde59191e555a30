"""Pulsar's ``app.yml``, read as LWR configuration.

A Pulsar site keeps its settings in ``app.yml``, named by ``app_config`` in server.ini's
``[app:main]`` or found beside server.ini. This module turns that YAML (merged over the ini's own
``[app:main]`` options, as Pulsar merges them) into the raw string mapping that
:func:`lwr.config.load_app_config` validates for server.ini, so both go through the same checks and
fail with the same messages. A ``managers:`` block becomes the managers a ``job_managers.ini``
would describe.

Pulsar keys LWR does not implement are *named* at start-up: an error when ignoring them would
weaken security or silently change what jobs do (:data:`PULSAR_UNSUPPORTED` says which), a warning
otherwise. Anything else LWR does not know is refused by ``load_app_config``, naming the key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwr.config import (
    APP_DEFAULTS,
    DEFAULT_MANAGER,
    STRUCTURED_OPTIONS,
    AppConfig,
    ManagerConfig,
    load_app_config,
    load_yaml_file,
)
from lwr.errors import ConfigurationError

log = logging.getLogger(__name__)

#: the file Pulsar looks for beside server.ini when ``app_config`` is not given
DEFAULT_APP_YML = "app.yml"
#: Pulsar's environment overrides: PULSAR_CONFIG_<KEY> (if unset) and PULSAR_CONFIG_OVERRIDE_<KEY>
ENV_PREFIX, ENV_OVERRIDE_PREFIX = "PULSAR_CONFIG_", "PULSAR_CONFIG_OVERRIDE_"


@dataclass(frozen=True)
class Unsupported:
    """A Pulsar key LWR does not implement: refuse it (``fatal``) or warn, saying ``why``.

    ``harmless`` is the value (as its ini string) that asks for what LWR does anyway; it is
    accepted silently.
    """

    fatal: bool
    why: str
    harmless: str | None = None


def _fatal(why: str, harmless: str | None = None) -> Unsupported:
    return Unsupported(True, why, harmless)


def _warn(why: str, harmless: str | None = None) -> Unsupported:
    return Unsupported(False, why, harmless)


_RELAY = _fatal("pulsar-relay (an HTTP message queue) is not implemented")
_METADATA = _warn("LWR does not report it in system_properties; Galaxy's remote metadata may fail")

#: top-level Pulsar keys LWR does not implement. A key that another part of LWR implements (it is
#: in APP_DEFAULTS) is never looked up here.
PULSAR_UNSUPPORTED: Mapping[str, Unsupported] = {
    "tool_config_file": _fatal("LWR reads tool_config_files (plural): rename it"),
    "job_directory_mode": _fatal("job directories would get other permissions than asked"),
    "message_queue_consume": _fatal("LWR always consumes its queues", harmless="true"),
    "message_queue_publish": _fatal("LWR always publishes status updates", harmless="true"),
    "amqp_durable": _fatal("LWR's queues are always durable", harmless="true"),
    "message_queue_credentials_file": _RELAY,
    "message_queue_username": _RELAY,
    "message_queue_password": _RELAY,
    "relay_topic_prefix": _RELAY,
    "relay_long_poll_timeout": _RELAY,
    "job_metrics": _warn("an inline job_metrics block is not read: use job_metrics_config_file"),
    "dependency_resolution": _warn("only <tool_dependency_dir>/NAME/VERSION/env.sh is resolved"),
    "dependency_resolvers_config_file": _warn(
        "only <tool_dependency_dir>/NAME/VERSION/env.sh is resolved"
    ),
    "conda_auto_init": _warn("Conda is not installed by LWR", harmless="false"),
    "conda_auto_install": _warn("Conda is not used by LWR", harmless="false"),
    "amqp_consumer_timeout": _warn("LWR's consumers have their own timeout"),
    "amqp_publish_timeout": _warn("LWR's publisher has its own timeout"),
    "status_outbox_drain_interval": _warn("LWR's status outbox has its own back-off"),
    "message_queue_publish_capabilities": _warn("no capability snapshot is published"),
    "sentry_dsn": _warn("errors are not reported to Sentry"),
    "sentry_event_level": _warn("errors are not reported to Sentry"),
    "ensure_cleanup": _warn("LWR cleans job directories on the client's request or by retention"),
    "tmp_dir": _warn("jobs use the system's temporary directory"),
    "logging": _warn("logging is configured by server.ini's [loggers] sections"),
    "config_dir": _warn("relative paths are resolved against server.ini's directory"),
    "galaxy_home": _METADATA,
    "galaxy_virtual_env": _METADATA,
    "galaxy_config_file": _METADATA,
    "galaxy_dataset_files_path": _METADATA,
    "galaxy_datatypes_config_file": _METADATA,
}
#: key prefixes of Pulsar features LWR does not implement (warnings)
PULSAR_UNSUPPORTED_PREFIXES: Mapping[str, Unsupported] = {
    "conda_": _warn("Conda is not used by LWR"),
    "object_store_": _warn("only object_store_config_file is read (remote_object_store_copy)"),
}
#: options of a Pulsar manager that no LWR manager implements (every other one is checked by the
#: manager itself, which refuses what it does not know)
PULSAR_MANAGER_UNSUPPORTED: Mapping[str, Unsupported] = {
    "job_directory_mode": PULSAR_UNSUPPORTED["job_directory_mode"],
    "monitor": _warn("LWR notices a finished local job at once"),
    "job_name_template": _warn("LWR names scheduler jobs lwr-<manager>-<job id>-<attempt>"),
    "drmaa_session_factory_class": _warn("LWR opens its own DRMAA session"),
    "tmp_dir": PULSAR_UNSUPPORTED["tmp_dir"],
    "debug": _warn("it has no effect in LWR"),
    "assign_ids": _warn("assign_ids is an app-wide setting in LWR"),
    "maximum_stream_size": _warn("maximum_stream_size is an app-wide setting in LWR"),
}
PULSAR_MANAGER_UNSUPPORTED_PREFIXES: Mapping[str, Unsupported] = {
    "preprocess_action_": _warn("staging is retried as staging_retries (app-wide) says"),
    "postprocess_action_": _warn("staging is retried as staging_retries (app-wide) says"),
    "galaxy_": _METADATA,
}
#: Pulsar's spelling of a value -> LWR's
_VALUE_ALIASES: Mapping[tuple[str, str], str] = {("assign_ids", "galaxy"): "none"}


@dataclass(frozen=True)
class Translated:
    """app.yml (+ the ini's options) as ``load_app_config`` takes them, and what was named."""

    raw: dict[str, Any]
    managers: tuple[ManagerConfig, ...] | None
    warnings: tuple[str, ...]


def load(options: Mapping[str, Any], here: str | os.PathLike[str] | None) -> AppConfig:
    """The app configuration from ``[app:main]`` ``options``, with Pulsar's app.yml if there is one.

    Without ``app_config`` and without an app.yml beside server.ini this is exactly
    :func:`~lwr.config.load_app_config`.
    """
    base = Path(here or os.getcwd())
    ini_options = {k: v for k, v in options.items() if k != "app_config"}
    path = find_app_yml(options, base)
    if path is None:
        return load_app_config(ini_options, here=here)
    log.info("reading Pulsar-style configuration %s", path)
    translated = translate(read_app_yml(path), ini_options, os.environ, source=path.name)
    for warning in translated.warnings:
        log.warning("%s", warning)
    return load_app_config(translated.raw, here=here, managers=translated.managers)


def find_app_yml(options: Mapping[str, Any], here: Path) -> Path | None:
    """``app_config`` (relative to server.ini's directory), else an app.yml beside server.ini.

    As in Pulsar, a named file that is missing falls back to ``<name>.sample`` when that exists.
    """
    named = str(options.get("app_config") or "").strip()
    if named:
        path = here / os.path.expanduser(named)
        if not path.exists() and path.with_name(path.name + ".sample").exists():
            path = path.with_name(path.name + ".sample")
        if not path.exists():
            raise ConfigurationError(f"app_config {str(path)!r} does not exist")
        return path
    beside = here / DEFAULT_APP_YML
    return beside if beside.exists() else None


def read_app_yml(path: Path) -> Mapping[str, Any]:
    """The YAML document at ``path``: a mapping (an empty file is an empty one)."""
    document = load_yaml_file(path)
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigurationError(f"{path}: the top level must be a mapping of option: value")
    return document


def translate(
    document: Mapping[str, Any],
    ini_options: Mapping[str, Any],
    environ: Mapping[str, str],
    source: str = DEFAULT_APP_YML,
) -> Translated:
    """Merge ``document`` over ``ini_options`` and Pulsar's environment overrides into raw options.

    Raises ConfigurationError naming every unsupported key whose absence would matter.
    """
    if "app_config" in document:
        raise ConfigurationError(f"{source}: app_config belongs in server.ini's [app:main]")
    merged = _merge(ini_options, document, environ)
    managers_block = _managers_block(merged, source)
    min_polling = merged.pop("min_polling_interval", None)
    if min_polling is not None and managers_block is None and "job_managers_config" in merged:
        raise ConfigurationError(
            f"{source}: a top-level min_polling_interval applies to a managers: block; "
            "with job_managers_config, set it in that file's sections"
        )
    raw: dict[str, Any] = {}
    warnings: list[str] = []
    fatal: list[str] = []
    for key, value in merged.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"{source}: option names must be strings, not {key!r}")
        text = to_raw(key, value, source)
        if text is None:
            continue
        notice = _unsupported(key, text)
        if notice is _HARMLESS:
            continue
        if notice is not None:
            (fatal if notice.fatal else warnings).append(_describe(source, key, notice))
            continue
        if key == "persistence_directory" and text == "__none__":
            warnings.append(
                f"{source}: persistence_directory __none__ is ignored: LWR always keeps job "
                "state (in the default persistence_directory)"
            )
            continue
        # a structured option (user_auth, plans) stays a mapping, which no alias applies to
        raw[key] = text if isinstance(text, Mapping) else _VALUE_ALIASES.get((key, text), text)
    managers = (
        _managers(managers_block, min_polling, source, warnings, fatal)
        if managers_block is not None or min_polling is not None
        else None
    )
    if fatal:
        raise ConfigurationError("; ".join(fatal))
    return Translated(raw, managers, tuple(warnings))


def _merge(
    ini_options: Mapping[str, Any], document: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The ini's options, app.yml over them, then Pulsar's ``PULSAR_CONFIG_*`` variables."""
    merged: dict[str, Any] = dict(ini_options)
    merged.update(document)
    for key, value in environ.items():
        if key.startswith(ENV_OVERRIDE_PREFIX):
            merged[key[len(ENV_OVERRIDE_PREFIX) :].lower()] = value
        elif key.startswith(ENV_PREFIX):
            merged.setdefault(key[len(ENV_PREFIX) :].lower(), value)
    return merged


def to_raw(key: str, value: Any, source: str = DEFAULT_APP_YML) -> Any:
    """A YAML value as the string the ini would hold (None: not set).

    Booleans become true/false, lists of scalars are comma-joined (lists of paths), and a mapping
    is kept as it is only for the keys of :data:`~lwr.config.STRUCTURED_OPTIONS`.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        if key in STRUCTURED_OPTIONS:
            return value
        raise ConfigurationError(f"{source}: {key} must be a single value, not a mapping")
    if isinstance(value, list | tuple):
        items = [_scalar(key, item, source) for item in value]
        return ",".join(items)
    return _scalar(key, value, source)


def _scalar(key: str, value: Any, source: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple) or value is None:
        raise ConfigurationError(f"{source}: {key} must be a value or a list of values")
    return str(value)


def _unsupported(key: str, text: Any) -> Unsupported | None:
    """The notice for a Pulsar key LWR does not implement, or None (known to LWR, or unknown)."""
    if key in APP_DEFAULTS:
        return None
    notice = _lookup(key, PULSAR_UNSUPPORTED, PULSAR_UNSUPPORTED_PREFIXES)
    if notice is None or (notice.harmless is not None and str(text).lower() == notice.harmless):
        return None if notice is None else _HARMLESS
    return notice


_HARMLESS = Unsupported(False, "")


def _lookup(
    key: str, table: Mapping[str, Unsupported], prefixes: Mapping[str, Unsupported]
) -> Unsupported | None:
    """The notice for ``key`` in ``table``, else for the first prefix of ``prefixes`` it has."""
    if key in table:
        return table[key]
    return next((notice for prefix, notice in prefixes.items() if key.startswith(prefix)), None)


def _describe(source: str, key: str, notice: Unsupported) -> str:
    if notice.fatal:
        return f"{source}: LWR does not implement {key} ({notice.why}); remove it to run without it"
    return f"{source}: {key} is not implemented by LWR and is ignored: {notice.why}"


def _managers_block(merged: dict[str, Any], source: str) -> Mapping[str, Any] | None:
    """Pulsar's ``managers:`` mapping, or its single ``manager:`` (named by its ``name``)."""
    many, one = merged.pop("managers", None), merged.pop("manager", None)
    if many is not None and one is not None:
        raise ConfigurationError(f"{source}: give managers: or manager:, not both")
    if one is not None:
        if not isinstance(one, Mapping):
            raise ConfigurationError(f"{source}: manager must be a mapping of option: value")
        options = dict(one)
        return {str(options.pop("name", DEFAULT_MANAGER)): options}
    if many is not None and not isinstance(many, Mapping):
        raise ConfigurationError(f"{source}: managers must be a mapping of name: options")
    return many


def _managers(
    block: Mapping[str, Any] | None,
    min_polling: Any,
    source: str,
    warnings: list[str],
    fatal: list[str],
) -> tuple[ManagerConfig, ...]:
    """ManagerConfigs of a managers: block; top-level min_polling_interval is their default."""
    managers = []
    for name, description in ({DEFAULT_MANAGER: {}} if block is None else block).items():
        if description is not None and not isinstance(description, Mapping):
            raise ConfigurationError(f"{source}: manager {name} must be a mapping of option: value")
        options: dict[str, str] = {}
        if min_polling is not None:
            options["min_polling_interval"] = _scalar("min_polling_interval", min_polling, source)
        for key, value in (description or {}).items():
            text = to_raw(f"managers.{name}.{key}", value, source)
            notice = _lookup(
                str(key), PULSAR_MANAGER_UNSUPPORTED, PULSAR_MANAGER_UNSUPPORTED_PREFIXES
            )
            if notice is not None:
                described = _describe(source, f"managers.{name}.{key}", notice)
                (fatal if notice.fatal else warnings).append(described)
            elif text is not None:
                options[str(key)] = text
        manager_type = options.pop("type", "queued_python")
        managers.append(ManagerConfig(str(name), manager_type, options))
    return tuple(managers)
