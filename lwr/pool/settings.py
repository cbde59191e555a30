"""The ``pool_*`` and ``metrics_*`` options, typed: read once by :func:`lwr.config.load_app_config`.

Kept here rather than in :mod:`lwr.config` so the pool's options live beside the code that uses
them; config.py calls :func:`parse_pool` and :func:`parse_metrics` with the raw strings.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from lwr.errors import ConfigurationError

#: the environment variable the balancer's local driver sets to name the workers it starts
WORKER_ID_ENV = "LWR_POOL_WORKER_ID"

#: the options of this module with their defaults, merged into ``lwr.config.APP_DEFAULTS``
POOL_DEFAULTS: Mapping[str, str] = {
    "pool_worker": "false",
    "pool_worker_id": "",
    "pool_slots": "0",
    "pool_heartbeat_seconds": "5",
    "pool_drain_timeout": "600",
    "pool_consumer_timeout": "604800",
    "pool_hub_timeout": "30",
    "metrics_port": "0",
    "metrics_host": "127.0.0.1",
    "metrics_require_token": "false",
}

_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class PoolConfig:
    """How this process takes part in a worker pool (``worker`` False: it does not)."""

    worker: bool = False
    worker_id: str = ""
    #: setups held at once per manager; 0: the manager's ``max_concurrent_jobs``
    slots: int = 0
    heartbeat_seconds: float = 5.0
    drain_timeout: float = 600.0
    #: asked of the broker for the setup consumer (x-consumer-timeout); 0: the broker's own
    consumer_timeout: float = 604800.0
    #: seconds a start request or a ping may wait for the supervisor hub before it is killed
    hub_timeout: float = 30.0


@dataclass(frozen=True)
class MetricsConfig:
    """``/metrics``: whether it needs the token, and a port of its own for webless servers."""

    port: int = 0
    host: str = "127.0.0.1"
    require_token: bool = False


def parse_pool(values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> PoolConfig:
    """The pool options; the worker id falls back to ``$LWR_POOL_WORKER_ID``, then host-pid."""
    environ = os.environ if environ is None else environ
    worker = _bool(values["pool_worker"], "pool_worker")
    if worker and not values.get("message_queue_url", "").strip():
        raise ConfigurationError("pool_worker = true needs message_queue_url: the pool is a queue")
    worker_id = values["pool_worker_id"] or environ.get(WORKER_ID_ENV, "")
    if not worker_id:
        worker_id = _NOT_ID.sub("-", f"{socket.gethostname()}-{os.getpid()}")[:64]
    from lwr.pool.protocol import WORKER_ID

    if not WORKER_ID.match(worker_id):
        raise ConfigurationError(
            f"pool_worker_id (or ${WORKER_ID_ENV}) must match {WORKER_ID.pattern}: {worker_id!r}"
        )
    heartbeat = _seconds(values["pool_heartbeat_seconds"], "pool_heartbeat_seconds")
    if heartbeat <= 0:
        raise ConfigurationError("pool_heartbeat_seconds must be positive")
    hub_timeout = _seconds(values["pool_hub_timeout"], "pool_hub_timeout")
    if not 0 < hub_timeout < float("inf"):
        raise ConfigurationError(
            f"pool_hub_timeout must be a positive number of seconds, not {hub_timeout}"
        )
    return PoolConfig(
        worker=worker,
        worker_id=worker_id,
        slots=_count(values["pool_slots"], "pool_slots"),
        heartbeat_seconds=heartbeat,
        drain_timeout=_seconds(values["pool_drain_timeout"], "pool_drain_timeout"),
        consumer_timeout=_seconds(values["pool_consumer_timeout"], "pool_consumer_timeout"),
        hub_timeout=hub_timeout,
    )


def parse_metrics(values: Mapping[str, str]) -> MetricsConfig:
    port = _count(values["metrics_port"], "metrics_port")
    if port > 65535:
        raise ConfigurationError(f"metrics_port must be a TCP port, not {port}")
    return MetricsConfig(
        port=port,
        host=values["metrics_host"] or "127.0.0.1",
        require_token=_bool(values["metrics_require_token"], "metrics_require_token"),
    )


def _bool(value: str, key: str) -> bool:
    from lwr import config  # not at the top: lwr.config imports this module

    return config._bool(value, key)


def _count(value: str, key: str) -> int:
    from lwr import config

    return config._size(value, key)


def _seconds(value: str, key: str) -> float:
    from lwr import config

    seconds = config.parse_seconds(value, key)
    if seconds != seconds:  # NaN passes float() and every comparison
        raise ConfigurationError(f"{key} must be a number of seconds, not {value!r}")
    return seconds
