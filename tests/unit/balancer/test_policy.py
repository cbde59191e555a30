"""The balancer's decisions: the table's range, hysteresis, and no flapping at a boundary."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from lwr.balancer.loadtable import parse_load_table
from lwr.balancer.policy import Decision, Observation, WorkerView, decide

TABLE = parse_load_table(enumerate(["0 1 1", "0.5 1 3", "2 2 4", "10 4 6"], start=1))


def pool(count: int, idle: bool = False, held: int = 0) -> tuple[WorkerView, ...]:
    return tuple(WorkerView(f"w{i}", jobs_held=held, idle_all_interval=idle) for i in range(count))


def test_grows_to_min_when_below() -> None:
    decision = decide(TABLE, Observation(load=3.0, workers=pool(1, held=1)))
    assert (decision.row_index, decision.before, decision.after) == (2, 1, 2)
    assert decision.launch == 1 and decision.drain == ()
    assert "row 3 [2, 4]" in decision.describe() and "pool 1 -> 2" in decision.describe()


def test_waiting_work_grows_up_to_max_only() -> None:
    seen = Observation(load=3.0, workers=pool(2, held=2), waiting=60, slots=2)
    assert decide(TABLE, seen).after == 4
    seen = Observation(load=3.0, workers=pool(2, held=2), waiting=1, slots=2)
    assert decide(TABLE, seen).after == 3
    assert decide(TABLE, Observation(load=3.0, workers=pool(4, held=2), waiting=60)).launch == 0


def test_below_min_with_waiting_work_grows_past_min() -> None:
    decision = decide(TABLE, Observation(load=3.0, workers=(), waiting=60, slots=2))
    assert decision.after == 4 and decision.reason == "below min"


def test_shrinks_to_max_idle_first_then_least_busy() -> None:
    workers = (
        WorkerView("busy", jobs_held=3),
        WorkerView("light", jobs_held=1),
        WorkerView("idle", idle_all_interval=True),
        WorkerView("fresh", starting=True),
    )
    decision = decide(TABLE, Observation(load=0.7, workers=workers))  # row [1, 3]
    assert decision.drain == ("idle",) and decision.after == 3
    decision = decide(TABLE, Observation(load=0.1, workers=workers))  # row [1, 1]
    assert decision.drain == ("idle", "fresh", "light")


def test_above_max_while_jobs_wait_only_idle_workers_go() -> None:
    workers = (
        WorkerView("busy", jobs_held=2),
        WorkerView("idle"),
        WorkerView("busy2", jobs_held=1),
    )
    decision = decide(TABLE, Observation(load=0.0, workers=workers, waiting=5))  # row [1, 1]
    assert decision.drain == ("idle",) and decision.after == 2 and decision.reason == "above max"
    assert decide(TABLE, Observation(load=0.0, workers=workers)).after == 1


def test_idle_workers_drain_down_to_min_only_when_nothing_waits() -> None:
    workers = (*pool(2, idle=True), WorkerView("busy", jobs_held=1))
    decision = decide(TABLE, Observation(load=3.0, workers=workers))  # row [2, 4]
    assert decision.drain == ("w0",) and decision.after == 2
    assert decide(TABLE, Observation(load=3.0, workers=workers, waiting=1)).drain == ()


def test_starting_workers_are_not_drained_for_idleness() -> None:
    workers = (WorkerView("a", starting=True, idle_all_interval=True), *pool(1, held=1))
    assert decide(TABLE, Observation(load=0.6, workers=workers)).drain == ()


def test_below_the_first_rate_means_no_worker() -> None:
    table = parse_load_table(enumerate(["0.2 1 2"], start=1))
    decision = decide(table, Observation(load=0.1, workers=pool(2)))
    assert decision.after == 0 and len(decision.drain) == 2
    assert "below first rate" in decision.describe()


def test_holds_within_range() -> None:
    decision = decide(TABLE, Observation(load=3.0, workers=pool(3, held=1)))
    assert not decision.changed and decision.reason == "within range"


def run(loads: list[float], busy: bool = True) -> tuple[int, int, list[Decision]]:
    """Feed loads to the policy as the daemon would, counting launches and drains."""
    workers: list[str] = []
    launched = drained = 0
    decisions = []
    for load in loads:
        views = tuple(
            WorkerView(w, jobs_held=int(busy), idle_all_interval=not busy) for w in workers
        )
        decision = decide(TABLE, Observation(load=load, workers=views))
        decisions.append(decision)
        for _ in range(decision.launch):
            workers.append(f"w{launched}")
            launched += 1
        for worker in decision.drain:
            workers.remove(worker)
            drained += 1
    return launched, drained, decisions


def test_no_flapping_when_the_rate_oscillates_around_a_boundary() -> None:
    """2.0 separates rows [1, 3] and [2, 4]: wobbling across it moves the pool once, then never."""
    rng = random.Random(11)
    loads = [2.5] + [2.0 + rng.uniform(-0.3, 0.3) for _ in range(200)]
    launched, drained, decisions = run(loads)
    assert (launched, drained) == (2, 0)  # to min 2 at the first poll, then nothing
    assert all(not d.changed for d in decisions[1:])


@given(st.lists(st.floats(min_value=1.5, max_value=2.5), min_size=1, max_size=80))
def test_no_flapping_for_any_oscillation_between_overlapping_rows(loads: list[float]) -> None:
    launched, drained, _ = run([2.2, *loads])
    assert launched == 2 and drained == 0


@given(st.lists(st.floats(min_value=0, max_value=50, allow_nan=False), min_size=1, max_size=50))
def test_the_pool_ends_inside_the_row_of_every_load(loads: list[float]) -> None:
    for load in loads:
        for size in range(8):
            decision = decide(TABLE, Observation(load=load, workers=pool(size)))
            assert decision.row.min <= decision.after <= decision.row.max
            waiting = decide(TABLE, Observation(load=load, workers=pool(size, held=1), waiting=3))
            assert waiting.after >= min(size, waiting.row.max) and not waiting.drain
            assert decision.after == size + decision.launch - len(decision.drain)
