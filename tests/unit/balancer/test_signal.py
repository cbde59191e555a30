"""The load signals: arrival rate from worker counters and the queue, and the backlog."""

from __future__ import annotations

from lwr.balancer.signal import RateMeter, backlog


def test_rate_sums_counter_growth_and_queue_growth_over_the_interval() -> None:
    meter = RateMeter()
    assert meter.sample(100.0, {"a": 5, "b": 7}, waiting=3) == 0.0  # the first sample: a baseline
    # a took 4, b took 2, the new worker c took 3, the queue grew by 3: 12 jobs in 6 s
    assert meter.sample(106.0, {"a": 9, "b": 9, "c": 3}, waiting=6) == 2.0


def test_jobs_leaving_the_queue_for_a_worker_are_not_counted_twice() -> None:
    meter = RateMeter()
    meter.sample(0.0, {"a": 0}, waiting=10)
    assert meter.sample(10.0, {"a": 10}, waiting=0) == 0.0  # nothing new arrived


def test_a_restarted_worker_counts_its_new_counter() -> None:
    meter = RateMeter()
    meter.sample(0.0, {"a": 50}, waiting=0)
    assert meter.sample(2.0, {"a": 4}, waiting=0) == 2.0


def test_rate_is_never_negative_and_tolerates_a_zero_interval() -> None:
    meter = RateMeter()
    meter.sample(0.0, {}, waiting=5)
    assert meter.sample(1.0, {}, waiting=0) == 0.0
    assert meter.sample(1.0, {}, waiting=9) == 0.0


def test_backlog_is_waiting_plus_held() -> None:
    assert backlog(3, [1, 2, 0]) == 6.0
