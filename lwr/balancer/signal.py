"""The load signal the table is read with (pure): arrival ``rate`` or ``backlog``.

``rate`` is jobs arriving per second on the pool's queue, averaged over the poll interval: the
jobs the workers took (the sum of the growth of each worker's ``jobs_received_total``) plus the
growth of the queue's backlog (jobs that arrived but nobody took yet), divided by the seconds
elapsed. It answers "how fast does work come in", which suits short jobs: a pool that keeps up
with the arrival rate keeps the queue empty.

``backlog`` is the work in the system right now: jobs waiting in the queue plus the jobs the
workers hold. It suits long jobs, where a handful of arrivals per hour can keep many workers busy
for hours while the arrival rate reads near zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SIGNALS = ("rate", "backlog")


@dataclass
class RateMeter:
    """Remembers the counters of the previous poll, to turn the next ones into a rate."""

    #: worker id -> jobs_received_total at the previous poll
    received: dict[str, int] = field(default_factory=dict)
    waiting: int | None = None
    at: float | None = None

    def sample(self, now: float, received: Mapping[str, int], waiting: int) -> float:
        """The arrival rate since the previous sample (0.0 on the first one).

        A worker seen for the first time contributes its whole counter (it started during the
        interval, or the balancer did); a counter that went down belongs to a restarted worker
        and contributes its new value. Workers missing from ``received`` (gone) keep their last
        value so they are not counted again if a late report shows up.
        """
        taken = 0
        for worker, total in received.items():
            before = self.received.get(worker, 0)
            taken += total - before if total >= before else total
            self.received[worker] = total
        queued = waiting - self.waiting if self.waiting is not None else 0
        elapsed = now - self.at if self.at is not None else 0.0
        first = self.at is None
        self.waiting, self.at = waiting, now
        if first:
            return 0.0
        if elapsed <= 0:
            return 0.0
        return max(0.0, (taken + queued) / elapsed)

    def forget(self, workers: Iterable[str]) -> None:
        for worker in workers:
            self.received.pop(worker, None)


def backlog(waiting: int, held: Iterable[int]) -> float:
    """The ``backlog`` signal: jobs waiting in the queue plus jobs the workers hold."""
    return float(waiting + sum(held))
