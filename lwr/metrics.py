"""Prometheus metrics for ``GET /metrics`` (and a webless server's ``metrics_port``).

What is a *state* is read from where it is kept, at scrape time: jobs by manager and state come
from the job store (one grouped query), a pool worker's held jobs and slots from its lease table.
Nothing is counted twice or drifts from the store after a restart.

What is an *event* — how long a job waited and ran, how many bytes its directory took in and gave
out, which requests came — has no row in the store, so it is observed in exactly two places: one
listener on every manager (transitions, :meth:`AppMetrics.on_change`) and one call in the WSGI
dispatcher (:meth:`AppMetrics.observe_request`). Those series restart from zero with the process,
as Prometheus counters and histograms are meant to.

``prometheus-client`` (the ``prometheus`` extra) writes the exposition format; one registry per
app, so several apps in one process (tests) never share series.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lwr.errors import ConfigurationError
from lwr.managers.base import JobState

if TYPE_CHECKING:
    from lwr.managers.stateful import StatefulManager
    from lwr.persistence.store import JobRecord, JobStore
    from lwr.pool.group import PoolGroup

log = logging.getLogger(__name__)

#: seconds: from a few seconds (workshops' short tools) to a day
TIME_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400)
#: job sub-directories whose files were staged in, and out
STAGED_IN = ("inputs", "unstructured", "configs", "tool_files")
STAGED_OUT = ("outputs",)
INSTALL_HINT = "pip install 'lwr[prometheus]'"
#: the content type of GET /metrics: the classic text exposition format (see AppMetrics.exposition)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def available() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


class AppMetrics:
    """The registry of one app, its store collector and its two event sources."""

    def __init__(
        self,
        store: JobStore,
        managers: Mapping[str, StatefulManager],
        pool: Callable[[], PoolGroup | None],
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StoreCollector(store, tuple(managers), pool))
        labels = ["manager"]
        self.queue_wait = Histogram(
            "lwr_job_queue_wait_seconds",
            "From a job's setup to its start (staging in and queueing)",
            labels,
            buckets=TIME_BUCKETS,
            registry=self.registry,
        )
        self.run_time = Histogram(
            "lwr_job_run_seconds",
            "From a job's start to its final state",
            labels,
            buckets=TIME_BUCKETS,
            registry=self.registry,
        )
        self.staged = Counter(
            "lwr_staged_bytes",
            "Bytes of the files of finished jobs: staged in (inputs, configs, tool files) and out",
            ["manager", "direction"],
            registry=self.registry,
        )
        self.requests = Counter(
            "lwr_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._started: dict[tuple[str, str, int], float] = {}
        self._lock = threading.Lock()
        for manager in managers.values():
            manager.listeners.append(self.on_change)

    def on_change(self, manager: StatefulManager, record: JobRecord) -> None:
        """A job transition (a StatefulManager listener): observe waits, run times, bytes."""
        key = (record.manager, record.job_id, record.attempt)
        if record.state is JobState.RUNNING:
            with self._lock:
                if key in self._started:
                    return
                self._started[key] = record.updated
            waited = max(0.0, record.updated - record.created)
            self.queue_wait.labels(record.manager).observe(waited)
        elif record.state.is_final:
            with self._lock:
                started = self._started.pop(key, None)
            if started is not None:
                self.run_time.labels(record.manager).observe(max(0.0, record.updated - started))
            root = manager.directory(record.job_id).root
            self.staged.labels(record.manager, "in").inc(_size(root, STAGED_IN))
            self.staged.labels(record.manager, "out").inc(_size(root, STAGED_OUT))

    def observe_request(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route, method, str(status)).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type.

        ``generate_latest`` writes the classic text format (names escaped to underscores), which
        is version 0.0.4; prometheus-client's ``CONTENT_TYPE_LATEST`` says ``version=1.0.0``
        since 0.22, a label for UTF-8 names this body does not use. Labelled 0.0.4 as the
        library's own HTTP server labels the same body, every Prometheus version parses it.
        """
        from prometheus_client import generate_latest

        return generate_latest(self.registry), CONTENT_TYPE


class _StoreCollector:
    """Jobs by manager and state from the job store, and a pool worker's leases, at scrape time."""

    def __init__(
        self, store: JobStore, managers: tuple[str, ...], pool: Callable[[], PoolGroup | None]
    ) -> None:
        self.store = store
        self.managers = managers
        self.pool = pool

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        jobs = GaugeMetricFamily(
            "lwr_jobs", "Jobs in the job store by manager and state", labels=["manager", "state"]
        )
        counts = self.store.counts_by_state()
        for manager in self.managers:
            for state in JobState:
                jobs.add_metric([manager, state.value], counts.get((manager, state.value), 0))
        yield jobs
        group = self.pool()
        if group is None:
            return
        held = GaugeMetricFamily("lwr_pool_jobs_held", "Setups held (leased)", labels=["manager"])
        slots = GaugeMetricFamily("lwr_pool_slots", "Setups held at most", labels=["manager"])
        draining = GaugeMetricFamily("lwr_pool_draining", "1 while draining", labels=["manager"])
        for consumer in group.consumers:
            name = consumer.manager.name
            held.add_metric([name], len(consumer.leases))
            slots.add_metric([name], consumer.slots)
            draining.add_metric([name], 1 if consumer.draining else 0)
        yield from (held, slots, draining)


def _size(root: Path, names: tuple[str, ...]) -> int:
    """Bytes of the regular files under ``root/<name>`` (links are not followed)."""
    total = 0
    for name in names:
        for directory, _dirs, files in os.walk(root / name):
            for file_name in files:
                try:
                    stat = os.lstat(os.path.join(directory, file_name))
                except OSError:
                    continue
                if not os.path.islink(os.path.join(directory, file_name)):
                    total += stat.st_size
    return total


def start_metrics_server(app: Any) -> Any:
    """Serve the app's metrics on ``metrics_port`` (webless servers); None when not configured.

    prometheus-client's own small HTTP server, in a thread: the only port such a server opens.
    It answers without a token, so it binds ``metrics_host`` (loopback unless the site says).
    """
    lwr_app = getattr(app, "app", app)
    config = lwr_app.config.metrics
    if not config.port:
        return None
    if lwr_app.metrics is None:
        raise ConfigurationError(f"metrics_port needs prometheus-client: {INSTALL_HINT}")
    if config.require_token:
        raise ConfigurationError(
            "metrics_port serves /metrics without a token: unset metrics_require_token, or "
            "bind metrics_host to a private address"
        )
    from prometheus_client import start_http_server

    server, _thread = start_http_server(config.port, config.host, lwr_app.metrics.registry)
    log.info("serving /metrics on http://%s:%d/", config.host, config.port)
    return server
