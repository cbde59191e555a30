"""A kill Galaxy sends before the elastic pool ever had a worker: the job must never run.

Galaxy's client declares no queue when it publishes, so before any worker of the pool ran only
the queues the balancer declares exist. The balancer declares the ``setup`` queue (the job waits
there) and the ``kill`` queue; without the latter the broker drops the kill and the first worker
the balancer starts for the waiting setup runs a job Galaxy has already killed.

Real RabbitMQ, ``lwr balancer`` started as a user starts it (local driver, real pool workers) and
Galaxy's own ``pulsar.client`` publishing the kill and then the setup.
"""

from __future__ import annotations

from collections.abc import Callable

import kombu
import pytest

from tests.integration.amqp.support import AMQP_URL, Client, delete_queues, queue_depth
from tests.integration.balancer.site import BalancerSite, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq, pytest.mark.timeout(180)]

#: the backlog signal: no worker while nothing waits; one as soon as a job does
TABLE = "0 0 0\n1 1 1\n"


def _depth_or_none(manager: str, name: str) -> int | None:
    """The queue's message count, or None when the broker has no such queue."""
    try:
        return queue_depth(manager, name)
    except kombu.exceptions.ChannelError:
        return None


def test_a_kill_sent_before_any_worker_ran_stops_the_job_the_balancer_starts_a_worker_for(
    tmp_path_factory: pytest.TempPathFactory,
    manager_name: str,
    client_factory: Callable[..., Client],
) -> None:
    root = tmp_path_factory.mktemp("early-kill")
    site = BalancerSite(root / "site", table=TABLE, signal="backlog")
    try:
        assert _depth_or_none(site.manager, "kill") is None  # a pool that never had a worker
        site.start()
        assert site.workers() == []
        client = client_factory(site.manager, amqp_url=AMQP_URL)
        client.publish("kill", {"job_id": "early"})
        kept = _depth_or_none(site.manager, "kill")  # checked last: the outcome is the point
        ran = root / "early-ran"
        client.setup("early", f"touch {ran}; echo ran")
        wait_for(lambda: len(site.records()) == 1, 60, site.log)  # the backlog brings a worker
        final = client.wait_status("early", "cancelled", timeout=90)
        assert final["complete"] == "true"
        assert not ran.exists()
        assert "complete" not in client.statuses("early")
        assert kept == 1, "the kill was not kept by the broker"
        assert site.stop().returncode == 0
        assert site.workers() == []
    finally:
        site.cleanup()
        delete_queues(site.manager)
