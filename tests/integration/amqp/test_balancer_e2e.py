"""The balancer end to end: real RabbitMQ, real LWR pool workers started by the local driver,
Galaxy's own message-queue client publishing the jobs, ``lwr balancer`` run as a user runs it.

poll_interval is 0.05 min (3 s) to keep the run short; nothing here asserts a duration: "within
two poll intervals" is counted in decisions, from the balancer's decisions.jsonl.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.amqp.support import Client
from tests.integration.balancer.site import BalancerSite, check_exactly_once, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq, pytest.mark.timeout(240)]

BURST = 60
ACCESS_KEY, SECRET_KEY = "AKIAFAKEKEYFORTEST01", "fake/secret+KEY/value0123456789"
DOCS_PLOT = Path(__file__).resolve().parents[3] / "docs" / "elastic_burst.png"


def burst(client: Client, prefix: str, seconds: float) -> dict[str, str]:
    expected = {}
    for i in range(BURST):
        job_id = f"{prefix}{i}"
        client.setup(job_id, f"sleep {seconds}; echo out {job_id}")
        expected[job_id] = f"out {job_id}\n"
    return expected


def back_to_idle_row(site: BalancerSite) -> None:
    """One worker left (the idle row [1, 1]), nothing draining, one worker process."""
    wait_for(
        lambda: (
            site.status().get("pool") == 1
            and not site.status().get("draining")
            and len(site.workers()) == 1
        ),
        90,
        site.log,
    )


def test_a_burst_grows_the_pool_to_max_then_returns_to_the_idle_row(
    site: BalancerSite, client_factory: Callable[..., Client]
) -> None:
    site.start("--access_key", ACCESS_KEY, "--secret_key", SECRET_KEY)
    pid = site.pid()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    assert ACCESS_KEY not in cmdline and SECRET_KEY not in cmdline and "balancer" in cmdline
    assert SECRET_KEY not in Path(f"/proc/{pid}/environ").read_bytes().decode()
    wait_for(lambda: len(site.workers()) == 1, 60, site.log)  # the idle row's worker
    client = client_factory(site.manager)
    published = time.time()
    expected = burst(client, "a", 0.5)
    check_exactly_once(client, expected)
    after = [d for d in site.history() if d["time"] >= published]
    assert max(d["after"] for d in after[:2]) == 4, after[:3]  # the table's max, in 2 polls
    assert max(d["actual"] for d in after) == 4
    back_to_idle_row(site)
    running = site.status_command()
    assert running.returncode == 0 and "running" in running.stdout and "pool: 1" in running.stdout
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{site.metrics_port}/metrics").read()
    assert b"lwr_balancer_pool_actual 1.0" in metrics and b"lwr_balancer_row " in metrics
    log = site.log()
    assert "pool 1 -> 4" in log and "row 3 [2, 4]" in log
    assert ACCESS_KEY not in log and SECRET_KEY not in log
    assert site.stop().returncode == 0
    assert site.workers() == [] and site.records() == []  # terminate_on_exit
    assert site.status_command().returncode == 3
    plot = site.directory / "elastic_burst.png"
    from bench.elastic import plot_history

    plot_history(site.history(), published, plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("LWR_UPDATE_PLOT"):
        shutil.copy(plot, DOCS_PLOT)


def test_kill_9_of_the_balancer_mid_burst_leaves_no_orphan_and_no_duplicate(
    site: BalancerSite, client_factory: Callable[..., Client]
) -> None:
    site.start()
    wait_for(lambda: len(site.workers()) == 1, 60, site.log)
    client = client_factory(site.manager)
    expected = burst(client, "k", 1.5)
    wait_for(lambda: any(d["after"] == 4 for d in site.history()), 30, site.log)
    site.kill9()
    launched = set(site.records())
    assert len(launched) == 4
    site.start()
    wait_for(lambda: "adopted 4 worker(s)" in site.log(), 30, site.log)
    seen_most = 0
    for job_id, output in expected.items():
        seen_most = max(seen_most, len(site.workers()), len(site.records()))
        assert client.wait_status(job_id, "complete", timeout=180)["stdout"] == output
    check_exactly_once(client, expected)
    assert seen_most <= 4  # never a duplicate worker
    assert set(site.records()) <= launched  # the new balancer started nobody new...
    back_to_idle_row(site)  # ... and drained the rest
    assert site.stop().returncode == 0
    assert site.workers() == []  # no orphan
