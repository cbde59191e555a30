"""The balancer's own Prometheus metrics: the load, the row, the desired and actual pool.

prometheus-client serves them on ``metrics_host:metrics_port`` (off when the port is empty) from a
registry of the balancer's own, so nothing else in the process leaks into them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

if TYPE_CHECKING:
    from lwr.balancer.policy import Decision


class BalancerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.load = Gauge("lwr_balancer_load", "The load signal at the last poll", registry=r)
        self.row = Gauge(
            "lwr_balancer_row", "Load table row of the last poll (1-based; 0 below it)", registry=r
        )
        self.row_min = Gauge("lwr_balancer_row_min", "The row's minimum pool", registry=r)
        self.row_max = Gauge("lwr_balancer_row_max", "The row's maximum pool", registry=r)
        self.desired = Gauge("lwr_balancer_pool_desired", "Pool size decided", registry=r)
        self.actual = Gauge("lwr_balancer_pool_actual", "Workers up or starting", registry=r)
        self.draining = Gauge("lwr_balancer_pool_draining", "Workers draining", registry=r)
        self.waiting = Gauge("lwr_balancer_jobs_waiting", "Jobs waiting in the queue", registry=r)
        self.launched = Counter("lwr_balancer_launches", "Workers launched", registry=r)
        self.drained = Counter("lwr_balancer_drains", "Drain commands sent", registry=r)
        self.killed = Counter(
            "lwr_balancer_kills", "Workers killed after their drain timed out", registry=r
        )

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def observe(self, decision: Decision, actual: int, draining: int, waiting: int) -> None:
        self.load.set(decision.load)
        self.row.set(decision.row_index + 1)
        self.row_min.set(decision.row.min)
        self.row_max.set(decision.row.max)
        self.desired.set(decision.after)
        self.actual.set(actual)
        self.draining.set(draining)
        self.waiting.set(waiting)
