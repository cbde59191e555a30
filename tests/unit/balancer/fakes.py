"""In-memory stand-ins for the balancer's driver, broker and clock (fakes, not mocks): the
balancer's loop runs against them in unit tests, and the ec2 driver test borrows the broker."""

from __future__ import annotations

from typing import Any

from lwr.balancer.broker import PoolBroker
from lwr.balancer.config import BalancerConfig
from lwr.balancer.drivers.base import Driver, Worker
from lwr.pool.protocol import LoadReport


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class MemoryDriver(Driver):
    """Workers that exist as entries of a dict; ``exit`` plays a worker process ending."""

    alias = "memory"

    def __init__(self, config: BalancerConfig, existing: tuple[str, ...] = ()) -> None:
        super().__init__(config)
        self.live = {w: Worker(w, 0.0, "memory", adopted=True) for w in existing}
        self.launched: list[str] = []
        self.terminated: list[str] = []
        self.closed: bool | None = None

    def start(self) -> list[Worker]:
        return list(self.live.values())

    def launch(self, count: int) -> list[Worker]:
        started = []
        for _ in range(count):
            worker = Worker(f"w{len(self.launched)}", 0.0, "memory")
            self.launched.append(worker.worker_id)
            self.live[worker.worker_id] = worker
            started.append(worker)
        return started

    def alive(self) -> dict[str, Worker]:
        return dict(self.live)

    def terminate(self, worker_id: str) -> None:
        self.terminated.append(worker_id)
        self.live.pop(worker_id, None)

    def close(self, workers_left: bool = False) -> None:
        self.closed = workers_left


class MemoryBroker(PoolBroker):
    def __init__(self, clock: Clock) -> None:
        super().__init__("memory://", "pulsar_", clock=clock)
        self.queue = 0
        self.drains: list[str] = []
        self.kept: list[str] = []

    def keep(self, queue: str) -> None:
        self.kept.append(queue)

    def waiting(self, queue: str) -> int:
        assert queue == "pulsar__setup"
        return self.queue

    def drain(self, worker_id: str, timeout: float | None) -> None:
        self.drains.append(worker_id)

    def report(self, worker_id: str, held: int = 0, received: int = 0, **extra: Any) -> None:
        self.record(
            LoadReport(
                worker_id=worker_id,
                manager="_default_",
                host="h",
                pid=1,
                slots=2,
                jobs_held=held,
                draining=extra.pop("draining", False),
                jobs_received_total=received,
                jobs_finished_total=0,
                sent_at=0.0,
                **extra,
            )
        )
