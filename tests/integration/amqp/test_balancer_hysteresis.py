"""No flapping with real processes: a real ``lwr balancer`` (local driver, real pool workers on
the real RabbitMQ) while Galaxy's ``pulsar.client`` publishes at a rate that alternates above and
below a load-table boundary for several poll intervals.

The table's rows either side of the 1 job/s boundary overlap (``[1, 3]`` below, ``[2, 3]``
above), so the only move the hysteresis allows is the first growth to the upper row's min; the
jobs are long enough (4 s, 8 slots a worker) that no worker is idle for a whole poll interval
and nothing waits in the queue. Launches and drains are counted from decisions.jsonl; nothing
asserts a duration.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.integration.amqp.support import Client, delete_queues
from tests.integration.balancer.site import BalancerSite, check_exactly_once, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq, pytest.mark.timeout(240)]

#: 1 job/s is the boundary; the first row keeps the warm worker before the jobs come
TABLE = "0    1 1\n0.2  1 3\n1    2 3\n"
ABOVE, BELOW = 1.4, 0.7  # jobs/s; margins for the rate measured from 0.5 s heartbeats
PHASE_POLLS = 2  # each phase lasts two poll intervals, so whole windows fall inside it
CYCLES = 2


def publish_oscillating(client: Client, poll_seconds: float) -> dict[str, str]:
    """Publish at ABOVE then BELOW jobs/s, PHASE_POLLS poll intervals each, CYCLES times, paced
    on the monotonic clock (Galaxy's client publishes each setup at once)."""
    expected: dict[str, str] = {}
    for _cycle in range(CYCLES):
        for rate in (ABOVE, BELOW):
            start = time.monotonic()
            sent = 0
            while time.monotonic() - start < PHASE_POLLS * poll_seconds:
                if sent <= (time.monotonic() - start) * rate:
                    job_id = f"h{len(expected)}"
                    client.setup(job_id, f"sleep 4; echo out {job_id}")
                    expected[job_id] = f"out {job_id}\n"
                    sent += 1
                time.sleep(0.02)
    return expected


def test_a_rate_oscillating_around_a_row_boundary_grows_once_and_never_drains(
    tmp_path_factory: pytest.TempPathFactory,
    manager_name: str,
    client_factory: Callable[..., Client],
) -> None:
    site = BalancerSite(tmp_path_factory.mktemp("hysteresis") / "site", table=TABLE, slots=8)
    try:
        site.start()
        wait_for(lambda: len(site.workers()) == 1 and len(site.history()) >= 1, 60, site.log)
        client = client_factory(site.manager)
        published = time.time()
        expected = publish_oscillating(client, 0.05 * 60)
        stopped_publishing = time.time()
        during = [d for d in site.history() if published <= d["time"] <= stopped_publishing]
        rows = {d["row"] for d in during}
        assert len(during) >= 2 * CYCLES * PHASE_POLLS - 2, during
        assert {2, 3} <= rows, during  # the load did cross the boundary both ways
        assert sum(d["launch"] for d in during) == 1, during  # 1 -> 2: the upper row's min
        assert [d for d in during if d["drain"]] == [], during  # never a drain
        check_exactly_once(client, expected)
        assert site.stop().returncode == 0
        assert site.workers() == []
    finally:
        site.cleanup()
        delete_queues(site.manager)
