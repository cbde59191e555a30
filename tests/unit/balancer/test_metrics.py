"""The balancer's Prometheus metrics: what one decision sets, in the text format scraped."""

from __future__ import annotations

from prometheus_client import generate_latest

from lwr.balancer.loadtable import Row
from lwr.balancer.metrics import BalancerMetrics
from lwr.balancer.policy import Decision


def test_a_decision_sets_load_row_and_pools() -> None:
    metrics = BalancerMetrics()
    decision = Decision(
        load=2.5,
        row_index=1,
        row=Row(2.0, 2, 4),
        before=1,
        after=4,
        launch=3,
        drain=(),
        reason="below min",
    )
    metrics.observe(decision, actual=4, draining=1, waiting=12)
    metrics.launched.inc(3)
    text = generate_latest(metrics.registry).decode()
    for line in (
        "lwr_balancer_load 2.5",
        "lwr_balancer_row 2.0",
        "lwr_balancer_row_min 2.0",
        "lwr_balancer_row_max 4.0",
        "lwr_balancer_pool_desired 4.0",
        "lwr_balancer_pool_actual 4.0",
        "lwr_balancer_pool_draining 1.0",
        "lwr_balancer_jobs_waiting 12.0",
        "lwr_balancer_launches_total 3.0",
    ):
        assert line in text.splitlines(), line
