"""Which jobs this worker holds, and what it owes the broker for them (pure: no kombu).

A worker *holds* a job while it holds the job's setup message unacknowledged on a live broker
channel: the delivery is the lease. Everything the worker says about a held job goes out on that
same channel, and the job's final status goes out in one broker transaction with the ack of the
delivery (see :mod:`lwr.pool.worker`). This module keeps the bookkeeping: the lease of each held
job, the status updates waiting to be sent (produced by manager threads, sent by the consumer
thread). Kills that arrive for jobs nobody holds yet are kept on disk, in the outbox.

A lease is an object, not a job id: an update is sent only while the lease it was produced under
is still the job's current one, so nothing from a job this worker abandoned (connection lost,
drain timeout) can ever reach Galaxy, even if the same job comes back to this worker later.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_serial = itertools.count(1)


@dataclass(eq=False)
class Lease:
    """One held job: the setup deliveries to ack (usually one) with its final status."""

    job_id: str
    deliveries: list[Any] = field(default_factory=list)
    taken: float = field(default_factory=time.time)
    serial: int = field(default_factory=lambda: next(_serial))
    #: deliveries acked with the final status; one appended later (a copy the broker delivered
    #: while the final's commit was awaited) is acked on its own after that commit
    acked: int = 0


@dataclass(frozen=True)
class Outgoing:
    """A status update of a held job, produced under ``lease``; ``final`` ends the lease."""

    lease: Lease
    body: Mapping[str, Any]
    final: bool


class LeaseTable:
    """Thread-safe: manager threads look leases up, the consumer thread takes and ends them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}
        self.outgoing: queue.Queue[Outgoing] = queue.Queue()
        self.received_total = 0
        self.finished_total = 0

    # -- leases ----------------------------------------------------------------------------

    def take(self, job_id: str, delivery: Any) -> Lease:
        """A new lease on ``job_id`` (the caller checked it holds none)."""
        with self._lock:
            lease = Lease(job_id, [delivery])
            self._leases[job_id] = lease
            self.received_total += 1
            return lease

    def get(self, job_id: str) -> Lease | None:
        with self._lock:
            return self._leases.get(job_id)

    def is_current(self, lease: Lease) -> bool:
        with self._lock:
            return self._leases.get(lease.job_id) is lease

    def release(self, lease: Lease, finished: bool) -> bool:
        """End ``lease`` (after its final status was committed, or to abandon it)."""
        with self._lock:
            if self._leases.get(lease.job_id) is not lease:
                return False
            del self._leases[lease.job_id]
            if finished:
                self.finished_total += 1
            return True

    def held(self) -> list[Lease]:
        with self._lock:
            return list(self._leases.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._leases)

    # -- updates ---------------------------------------------------------------------------

    def offer(self, job_id: str, body: Mapping[str, Any], final: bool) -> bool:
        """Queue an update of ``job_id`` if it is held; False (dropped) when it is not."""
        lease = self.get(job_id)
        if lease is None:
            return False
        self.outgoing.put(Outgoing(lease, dict(body), final))
        return True

    def pending(self) -> list[Outgoing]:
        """Every queued update, in the order produced."""
        items = []
        while True:
            try:
                items.append(self.outgoing.get_nowait())
            except queue.Empty:
                return items
