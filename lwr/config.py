"""Configuration: raw ini/yaml strings in, frozen typed dataclasses out.

This is the only module that reads raw option dictionaries. It runs once at start-up, validates
everything, and refuses unknown keys by name, so a typo in ``server.ini`` is an error at start
instead of a silently ignored setting. Defaults live in :data:`APP_DEFAULTS` and nowhere else (a
test checks ``server.ini.sample`` against them). The parsers of single values (seconds, sizes,
booleans, paths) live in :mod:`lwr.config_values` and are re-exported here.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwr.auth.settings import UserAuthConfig, parse_user_auth
from lwr.config_values import (
    _bool,
    _ca_file,
    _existing,
    _existing_file,
    _host_key_policy,
    _int,
    _joined,
    _networks,
    _path,
    _path_list,
    _proxy,
    _pulsar_version,
    _required_path,
    _size,
    load_yaml_file,
    parse_concurrency,
    parse_seconds,
)
from lwr.egress import Network
from lwr.errors import ConfigurationError
from lwr.pool.settings import POOL_DEFAULTS, MetricsConfig, PoolConfig, parse_metrics, parse_pool
from lwr.proxy import Proxy
from lwr.service.notify.settings import NOTIFY_DEFAULTS, NotifyConfig, parse_notify
from lwr.service.plans import Plans, parse_plans
from lwr.service.retention.settings import RETENTION_DEFAULTS, RetentionConfig, parse_retention
from lwr.service.sessions import SESSION_DEFAULTS, SessionConfig, parse_sessions
from lwr.tes.user_storage import UserStorage, parse_user_storage
from lwr.ui.tools import parse_tools

DEFAULT_MANAGER = "_default_"

#: every ``[app:main]`` option with its default, as the string an ini file would hold
APP_DEFAULTS: Mapping[str, str] = {
    "private_token": "",
    "staging_directory": "files/staging",
    "persistence_directory": "files/persisted_data",
    "job_managers_config": "job_managers.ini",
    # read by lwr.config_yaml before validation: a Pulsar-style app.yml merged over these options
    "app_config": "",
    "assign_ids": "none",
    "tool_dependency_dir": "dependencies",
    "file_cache_dir": "",
    "file_cache_size": "0",
    "staging_retries": "3",
    "staging_retry_delay": "1",
    "staging_retry_max_delay": "30",
    "staging_timeout": "60",
    "remote_copy_allowed_paths": "",
    "staging_ssh_strict_host_key_checking": "true",
    "staging_ssh_known_hosts": "",
    "object_store_config_file": "",
    "tool_config_files": "",
    "job_metrics_config_file": "",
    "ssl_pem": "",
    "max_upload_size": "0",
    "maximum_stream_size": "1048576",
    "finished_job_retention": "0",
    "message_queue_url": "",
    "amqp_key_prefix": "",
    "amqp_heartbeat": "580",
    "amqp_acknowledge": "false",
    "amqp_ack_republish_time": "30",
    "amqp_publish_retry": "false",
    "amqp_publish_retry_max_retries": "5",
    "amqp_publish_retry_interval_start": "1",
    "amqp_publish_retry_interval_step": "2",
    "amqp_publish_retry_interval_max": "30",
    "amqp_connect_ssl_ca_certs": "",
    "amqp_connect_ssl_keyfile": "",
    "amqp_connect_ssl_certfile": "",
    "amqp_connect_ssl_cert_reqs": "",
    "user_auth": "",
    "pulsar_protocol_version": "",
    # the shared job service (lwr.service): users' database, plans, new users' plan
    "database_url": "",
    "plans": "",
    "default_plan": "free",
    # the dashboard's tools (lwr.ui.tools): lines of `name = command template`
    "ui_tools": "",
    # the elastic worker pool and /metrics (lwr.pool.settings)
    **POOL_DEFAULTS,
    # completion notifications: SMTP, the job link's base, retries (lwr.service.notify.settings)
    **NOTIFY_DEFAULTS,
    # archive and restore of users' results (lwr.service.retention.settings)
    **RETENTION_DEFAULTS,
    # internal networks service users' TES tasks may fetch from and send to (lwr.egress)
    "tes_user_allowed_networks": "",
    # the forward proxy TES http(s) transfers go through (lwr.proxy): none
    "tes_http_proxy": "",
    # the CA bundle TES https transfers (and an https proxy) are verified by: the system's
    "tes_ca_file": "",
    # where service users' TES file:// and s3:// URLs may lead (lwr.tes.user_storage): nowhere
    "tes_user_file_roots": "",
    "tes_user_s3_buckets": "",
    # the dashboard's signed-in sessions: idle timeout and lifetime (lwr.service.sessions)
    **SESSION_DEFAULTS,
}

#: options whose app.yml value is passed to their consumer unchanged, as a mapping, instead of
#: being turned into the string an ini file would hold (in an ini file they hold a path)
STRUCTURED_OPTIONS = frozenset({"user_auth", "plans"})

#: keys PasteDeploy or our runners may put beside the app's own options
_PASTE_KEYS = frozenset({"here", "__file__", "use", "paste.app_factory", "debug"})

ASSIGN_IDS = ("none", "uuid")

_CERT_REQS = ("cert_none", "cert_optional", "cert_required")

#: re-exported: settings modules and managers import these parsers from here
__all__ = [
    "APP_DEFAULTS",
    "ASSIGN_IDS",
    "DEFAULT_MANAGER",
    "STRUCTURED_OPTIONS",
    "AmqpConfig",
    "AppConfig",
    "ManagerConfig",
    "_bool",
    "_int",
    "_size",
    "load_app_config",
    "load_managers_ini",
    "load_yaml_file",
    "parse_concurrency",
    "parse_seconds",
]


@dataclass(frozen=True)
class ManagerConfig:
    """One ``[manager:NAME]`` section: the backend type and its (string) options."""

    name: str
    type: str = "queued_python"
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AmqpConfig:
    """The ``amqp_*`` options: how each manager binds to the broker of ``message_queue_url``."""

    key_prefix: str | None = None
    heartbeat: int = 580
    acknowledge: bool = False
    ack_republish_time: float = 30.0
    publish_retry: bool = False
    publish_retry_policy: Mapping[str, float] = field(default_factory=dict)
    ssl: Mapping[str, str] | None = None


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
    finished_job_retention: float
    message_queue_url: str | None
    managers: tuple[ManagerConfig, ...]
    amqp: AmqpConfig = field(default_factory=AmqpConfig)
    #: server-side staging and the file cache (lwr.staging.remote, lwr.cache)
    file_cache_size: int | None = None
    staging_retries: int = 3
    staging_retry_delay: float = 1.0
    staging_retry_max_delay: float = 30.0
    staging_timeout: float = 60.0
    remote_copy_allowed_paths: tuple[Path, ...] = ()
    #: Pulsar's ``user_auth`` plugins (lwr.auth); None when not configured
    user_auth: UserAuthConfig | None = None
    #: remote_scp_transfer / remote_rsync_transfer: OpenSSH's StrictHostKeyChecking value
    staging_ssh_host_key_policy: str = "yes"
    staging_ssh_known_hosts: Path | None = None
    #: remote_object_store_copy: a Galaxy object store configuration (XML or YAML)
    object_store_config_file: Path | None = None
    #: Galaxy toolbox files whitelisting the tools jobs may run (lwr.tools); empty: any tool
    tool_config_files: tuple[Path, ...] = ()
    #: galaxy-job-metrics plugin configuration (lwr.job_metrics); None: no instrumentation
    job_metrics_config_file: Path | None = None
    #: ``pulsar_version`` of the setup answer (lwr.pulsar_version): the implemented one if None
    pulsar_protocol_version: str | None = None
    #: the job store's PostgreSQL database (lwr.persistence.database); None: SQLite
    database_url: str | None = None
    #: service users' plans (lwr.service.plans)
    plans: Plans = field(default_factory=Plans)
    #: the tools the dashboard may run (lwr.ui.tools): name -> command template
    ui_tools: Mapping[str, str] = field(default_factory=dict)
    #: the elastic worker pool (lwr.pool) and /metrics (lwr.metrics)
    pool: PoolConfig = field(default_factory=PoolConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    #: completion notifications (lwr.service.notify)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    #: archive and restore of service users' results (lwr.service.retention)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    #: internal networks service users' TES tasks may reach all the same (lwr.egress)
    tes_user_allowed_networks: tuple[Network, ...] = ()
    #: the forward proxy every TES http(s) transfer goes through (None: direct)
    tes_http_proxy: Proxy | None = None
    #: the PEM bundle that verifies TES https targets and proxy (None: the system's CAs)
    tes_ca_file: Path | None = None
    #: file:// directories and s3:// buckets opened to service users' TES tasks
    tes_user_storage: UserStorage = field(default_factory=UserStorage)
    #: how long the dashboard's signed-in sessions live (lwr.service.sessions)
    sessions: SessionConfig = field(default_factory=SessionConfig)


def load_app_config(
    raw: Mapping[str, Any],
    here: str | os.PathLike[str] | None = None,
    managers: tuple[ManagerConfig, ...] | None = None,
) -> AppConfig:
    """Validate ``raw`` (the app section's options) into an :class:`AppConfig`.

    Relative paths are resolved against ``here`` (the directory of server.ini; PasteDeploy passes
    it), so the server behaves the same whatever directory it is started from. ``managers`` are
    those of an app.yml ``managers:`` block (see :mod:`lwr.config_yaml`), used instead of
    ``job_managers_config``.
    """
    base = Path(here or raw.get("here") or os.getcwd()).resolve()
    unknown = sorted(k for k in raw if k not in APP_DEFAULTS and k not in _PASTE_KEYS)
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) in the app configuration: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(APP_DEFAULTS))})"
        )
    user_auth = _user_auth(raw.get("user_auth"), base)  # a mapping (YAML) or a path: not a string
    values = {
        k: _joined(raw.get(k, default)).strip()
        for k, default in APP_DEFAULTS.items()
        if not (k in STRUCTURED_OPTIONS and isinstance(raw.get(k), Mapping))
    }

    assign_ids = values["assign_ids"].lower()
    if assign_ids not in ASSIGN_IDS:
        raise ConfigurationError(f"assign_ids must be one of {ASSIGN_IDS}, not {assign_ids!r}")

    jm_raw = values["job_managers_config"]
    jm_path = _path(base, jm_raw)
    explicit_jm = "job_managers_config" in raw
    if managers is not None and explicit_jm:
        raise ConfigurationError("give job_managers_config or a managers: block, not both")
    if jm_path is not None and (managers is not None or not jm_path.exists()):
        if explicit_jm:
            raise ConfigurationError(f"job_managers_config {str(jm_path)!r} does not exist")
        jm_path = None
    if managers is None:
        managers = load_managers_ini(jm_path) if jm_path else (ManagerConfig(DEFAULT_MANAGER),)
    elif not managers:
        raise ConfigurationError("the managers: block names no manager")

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
        max_upload_size=_size(values["max_upload_size"], "max_upload_size") or None,
        maximum_stream_size=_size(values["maximum_stream_size"], "maximum_stream_size"),
        finished_job_retention=parse_seconds(
            values["finished_job_retention"], "finished_job_retention"
        ),
        message_queue_url=values["message_queue_url"] or None,
        managers=managers,
        amqp=_amqp_config(values),
        file_cache_size=_size(values["file_cache_size"], "file_cache_size") or None,
        staging_retries=_size(values["staging_retries"], "staging_retries"),
        staging_retry_delay=parse_seconds(values["staging_retry_delay"], "staging_retry_delay"),
        staging_retry_max_delay=parse_seconds(
            values["staging_retry_max_delay"], "staging_retry_max_delay"
        ),
        staging_timeout=parse_seconds(values["staging_timeout"], "staging_timeout") or 60.0,
        remote_copy_allowed_paths=_path_list(base, values["remote_copy_allowed_paths"]),
        user_auth=user_auth,
        staging_ssh_host_key_policy=_host_key_policy(
            values["staging_ssh_strict_host_key_checking"]
        ),
        staging_ssh_known_hosts=_path(base, values["staging_ssh_known_hosts"]),
        object_store_config_file=_path(base, values["object_store_config_file"]),
        tool_config_files=_existing(
            _path_list(base, values["tool_config_files"]), "tool_config_files"
        ),
        job_metrics_config_file=_existing_file(
            _path(base, values["job_metrics_config_file"]), "job_metrics_config_file"
        ),
        pulsar_protocol_version=_pulsar_version(values["pulsar_protocol_version"]),
        database_url=values["database_url"] or None,
        plans=parse_plans(raw.get("plans", ""), base, values["default_plan"]),
        ui_tools=parse_tools(values["ui_tools"]),
        pool=parse_pool(values),
        metrics=parse_metrics(values),
        notify=parse_notify(values, base),
        retention=parse_retention(values, base),
        tes_user_allowed_networks=_networks(values, "tes_user_allowed_networks"),
        tes_http_proxy=_proxy(values, "tes_http_proxy"),
        tes_ca_file=_ca_file(base, values["tes_ca_file"], "tes_ca_file"),
        tes_user_storage=parse_user_storage(
            values["tes_user_file_roots"], values["tes_user_s3_buckets"], base
        ),
        sessions=parse_sessions(values),
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


def _amqp_config(values: Mapping[str, str]) -> AmqpConfig:
    """The ``amqp_*`` options, typed; names and meanings follow Galaxy's ``pulsar.client``."""
    policy = {
        key: parse_seconds(values[f"amqp_publish_retry_{key}"], f"amqp_publish_retry_{key}")
        for key in ("interval_start", "interval_step", "interval_max")
    }
    policy["max_retries"] = _size(
        values["amqp_publish_retry_max_retries"], "amqp_publish_retry_max_retries"
    )
    ssl = {
        key: values[f"amqp_connect_ssl_{key}"]
        for key in ("ca_certs", "keyfile", "certfile", "cert_reqs")
        if values[f"amqp_connect_ssl_{key}"]
    }
    if "cert_reqs" in ssl and ssl["cert_reqs"].lower() not in _CERT_REQS:
        raise ConfigurationError(
            f"amqp_connect_ssl_cert_reqs must be one of {_CERT_REQS}, not {ssl['cert_reqs']!r}"
        )
    return AmqpConfig(
        key_prefix=values["amqp_key_prefix"] or None,
        heartbeat=_size(values["amqp_heartbeat"], "amqp_heartbeat"),
        acknowledge=_bool(values["amqp_acknowledge"], "amqp_acknowledge"),
        ack_republish_time=parse_seconds(
            values["amqp_ack_republish_time"], "amqp_ack_republish_time"
        ),
        publish_retry=_bool(values["amqp_publish_retry"], "amqp_publish_retry"),
        publish_retry_policy=policy,
        ssl=ssl or None,
    )


def _user_auth(value: Any, base: Path) -> UserAuthConfig | None:
    """``user_auth``: the nested mapping itself (app.yml), or the path of a YAML file holding it
    (server.ini, whose values are strings); validated completely here, at start-up."""
    if isinstance(value, str):
        if not value.strip():
            return None
        path = _required_path(base, value.strip(), "user_auth")
        loaded = load_yaml_file(path, "user_auth file ")
        if loaded is None:
            raise ConfigurationError(f"the user_auth file {str(path)!r} is empty")
        return parse_user_auth(loaded, str(path))
    return parse_user_auth(value)
