"""GET /metrics on an HTTP server: Prometheus' own parser reads it; the token is the site's choice.

(A pool worker's metrics, served on its own port, are tested in amqp/test_pool.py.)
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.metrics_support import scrape

pytestmark = [pytest.mark.integration]


def test_http_metrics_count_requests_and_may_require_the_token(
    lwr_server_factory: ServerFactory,
) -> None:
    open_server = lwr_server_factory(app_options={"private_token": "sesame"})
    healthz = (
        "lwr_http_requests_total",
        (("method", "GET"), ("route", "/healthz"), ("status", "200")),
    )
    before = scrape(f"{open_server.url}metrics")[healthz]  # public: no token needed
    assert open_server.get("healthz")[0] == 200
    assert open_server.get("jobs/nope/status")[0] == 403  # no token
    samples = scrape(f"{open_server.url}metrics")
    assert samples[healthz] == before + 1
    status = (("method", "GET"), ("route", "/jobs/{job_id}/status"), ("status", "403"))
    assert samples[("lwr_http_requests_total", status)] == 1
    scraped = (("method", "GET"), ("route", "/metrics"), ("status", "200"))
    assert samples[("lwr_http_requests_total", scraped)] == 1
    assert ("lwr_jobs", (("manager", "_default_"), ("state", "complete"))) in samples
    closed = lwr_server_factory(
        app_options={"private_token": "sesame", "metrics_require_token": "true"}
    )
    assert closed.get("metrics")[0] == 403
    code, body = closed.request("GET", "metrics", headers={"Authorization": "Bearer sesame"})
    assert code == 200 and b"lwr_jobs" in body
