"""The balancer's decision: from the load and the pool's state to launches and drains (pure).

The load table gives a range ``[min, max]`` for the load. The pool moves only when:

* it is below ``min`` (grow to ``min``), or queued work waits while it is below ``max`` (grow by
  as many workers as the waiting jobs fill, up to ``max``);
* it is above ``max`` (shrink to ``max``, idle workers first; while jobs wait in the queue only
  idle workers are taken out, since a busy one would stop taking the waiting work), or workers
  stayed idle for a whole poll interval while it is above ``min`` (drain those, down to
  ``min``).

Inside the range with nothing waiting and nobody idle the pool holds, so a load wobbling across a
row boundary whose ranges overlap changes nothing. No clock, no I/O: the daemon feeds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lwr.balancer.loadtable import LoadTable, Row


@dataclass(frozen=True)
class WorkerView:
    """What the policy needs of one worker that is up or starting (not draining)."""

    worker_id: str
    jobs_held: int = 0
    #: idle (no job held) through the whole last poll interval
    idle_all_interval: bool = False
    #: started less than a poll interval ago or not reporting yet: never drained for idleness
    starting: bool = False


@dataclass(frozen=True)
class Observation:
    load: float
    workers: tuple[WorkerView, ...]
    #: jobs waiting in the pool's queue, taken by no worker
    waiting: int = 0
    #: slots (concurrent jobs) of one worker, to size growth from the waiting jobs
    slots: int = 1


@dataclass(frozen=True)
class Decision:
    load: float
    row_index: int
    row: Row
    before: int
    after: int
    launch: int
    drain: tuple[str, ...]
    reason: str

    @property
    def changed(self) -> bool:
        return bool(self.launch or self.drain)

    def describe(self) -> str:
        """The log line of a decision: load, row, pool before and after, why."""
        row = "below first rate" if self.row_index < 0 else f"row {self.row_index + 1}"
        return (
            f"load {self.load:.3f} -> {row} [{self.row.min}, {self.row.max}]: pool "
            f"{self.before} -> {self.after} ({self.reason}; launch {self.launch}, "
            f"drain {len(self.drain)}{': ' + ' '.join(self.drain) if self.drain else ''})"
        )


def decide(table: LoadTable, seen: Observation) -> Decision:
    """What to do about the pool for this load; see the module docstring for the rules."""
    index, row = table.row_for(seen.load)
    pool = len(seen.workers)

    def result(after: int, reason: str, drain: tuple[str, ...] = ()) -> Decision:
        return Decision(
            load=seen.load,
            row_index=index,
            row=row,
            before=pool,
            after=after,
            launch=max(0, after - pool),
            drain=drain,
            reason=reason,
        )

    if pool < row.min:
        wanted = row.min
        if seen.waiting > 0:
            wanted = max(wanted, min(row.max, pool + _workers_for(seen.waiting, seen.slots)))
        return result(wanted, "below min")
    if pool > row.max:
        order = _shrink_order(seen.workers)
        if seen.waiting > 0:  # never take a busy worker out while jobs wait for one
            free = {w.worker_id for w in seen.workers if w.jobs_held == 0}
            order = tuple(w for w in order if w in free)
        drain = order[: pool - row.max]
        return result(pool - len(drain), "above max", drain)
    if seen.waiting > 0 and pool < row.max:
        return result(min(row.max, pool + _workers_for(seen.waiting, seen.slots)), "work waits")
    idle = tuple(w.worker_id for w in seen.workers if w.idle_all_interval and not w.starting)
    if seen.waiting == 0 and idle and pool > row.min:
        drain = idle[: pool - row.min]
        return result(pool - len(drain), "idle a whole interval", drain)
    return result(pool, "within range")


def _workers_for(waiting: int, slots: int) -> int:
    return math.ceil(waiting / max(1, slots))


def _shrink_order(workers: tuple[WorkerView, ...]) -> tuple[str, ...]:
    """Workers to drain first: idle ones, then those holding fewest jobs; starting ones last
    among the idle (they cost nothing yet but may be about to take work)."""
    ranked = sorted(
        workers, key=lambda w: (w.jobs_held > 0, w.jobs_held, not w.idle_all_interval, w.starting)
    )
    return tuple(w.worker_id for w in ranked)
