"""The balancer's side of the broker: hear load reports, read the backlog, send drains.

Reports arrive on an exclusive, auto-deleted queue bound to ``<prefix>.load`` on the ``lwr_pool``
topic exchange (see :mod:`lwr.pool.protocol`), consumed by one thread that reconnects on its own
when the broker goes away. The backlog is the message count of the pool's setup queue, read with
a passive ``queue_declare`` (the balancer declares the queue only when it does not exist, exactly as
Galaxy's client and the workers would). The ``kill`` queue is declared the same way, so a kill
sent while the pool never had a worker waits for the first one instead of being dropped.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import kombu

from lwr.errors import InvalidRequestError
from lwr.messaging.exchange import CONNECT_TIMEOUT, EXCHANGE_NAME, EXCHANGE_TYPE, redact_url
from lwr.pool.protocol import (
    POOL_EXCHANGE,
    POOL_EXCHANGE_TYPE,
    DrainCommand,
    LoadReport,
    control_key,
    load_key,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """The latest report of one worker, with when (balancer's monotonic clock) it came and when
    that worker was last seen holding a job (or first heard of)."""

    report: LoadReport
    at: float
    busy_at: float
    first_at: float


class PoolBroker:
    def __init__(self, url: str, prefix: str, clock: Any = time.monotonic) -> None:
        self.url = url
        self.prefix = prefix
        self.clock = clock
        self.exchange = kombu.Exchange(POOL_EXCHANGE, POOL_EXCHANGE_TYPE, durable=False)
        self._heard: dict[str, Heard] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def _connection(self) -> kombu.Connection:
        return kombu.Connection(self.url, connect_timeout=CONNECT_TIMEOUT, heartbeat=0)

    # -- reports ------------------------------------------------------------------------------

    def start(self) -> PoolBroker:
        self._thread = threading.Thread(target=self._consume_forever, name="load-reports")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def heard(self) -> dict[str, Heard]:
        with self._lock:
            return dict(self._heard)

    def forget(self, worker_id: str) -> None:
        with self._lock:
            self._heard.pop(worker_id, None)

    def _consume_forever(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                self._consume()
                delay = 1.0
            except Exception as exc:  # any broker trouble: wait and reconnect
                self.connected.clear()
                log.warning(
                    "load reports: %s (%s); reconnecting in %.0fs", redact_url(self.url), exc, delay
                )
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _consume(self) -> None:
        name = f"{self.prefix}.balancer.{uuid.uuid4().hex[:8]}"
        queue = kombu.Queue(
            name,
            self.exchange,
            routing_key=load_key(self.prefix),
            exclusive=True,
            auto_delete=True,
            durable=False,
        )
        with self._connection() as connection:
            with connection.Consumer([queue], callbacks=[self._on_message], accept=["json"]):
                self.connected.set()
                log.info("listening for load reports on %s", load_key(self.prefix))
                while not self._stop.is_set():
                    try:
                        connection.drain_events(timeout=1.0)
                    except TimeoutError:
                        connection.heartbeat_check()

    def _on_message(self, body: Any, message: Any) -> None:
        message.ack()
        try:
            report = LoadReport.from_body(body)
        except InvalidRequestError as exc:
            log.warning("ignoring a load report: %s", exc.message)
            return
        self.record(report)

    def record(self, report: LoadReport) -> None:
        """Keep ``report`` as its worker's latest (also the seam unit tests feed)."""
        now = self.clock()
        with self._lock:
            before = self._heard.get(report.worker_id)
            first = before.first_at if before else now
            busy = now if report.jobs_held > 0 else (before.busy_at if before else now)
            self._heard[report.worker_id] = Heard(report, now, busy, first)

    # -- the queue and the workers ------------------------------------------------------------

    def waiting(self, queue: str) -> int:
        """Jobs waiting in ``queue`` (ready, not taken by a worker), read without altering it.

        A queue that does not exist yet is declared exactly as Galaxy's client and LWR declare it
        (durable, on the durable direct exchange ``pulsar``): Galaxy's client declares only the
        exchange when it publishes, so without the queue a job submitted while the pool is empty
        (below the table's first rate, or before the first worker is up) would be dropped by the
        broker as unroutable.
        """
        return self._count_or_declare(queue)

    def keep(self, queue: str) -> None:
        """Declare ``queue`` (as :meth:`waiting` does) if it does not exist yet.

        For the pool's ``kill`` queue: a kill Galaxy sends before any worker ever ran would
        otherwise be dropped as unroutable, and the job, whose setup waits in the declared setup
        queue, would run once the first worker came. A queue that exists is left as it is (only a
        passive declare touches it), so one an operator made with other arguments is not refused.
        """
        self._count_or_declare(queue)

    def _count_or_declare(self, queue: str) -> int:
        with self._connection() as connection:
            try:
                _, count, _ = connection.default_channel.queue_declare(queue, passive=True)
                return int(count)
            except connection.channel_errors:  # 404: no such queue yet
                pass
        with self._connection() as connection:
            galaxy = kombu.Exchange(EXCHANGE_NAME, EXCHANGE_TYPE, durable=True)
            kombu.Queue(queue, galaxy, routing_key=queue, durable=True)(
                connection.default_channel
            ).declare()
            log.info("declared the pool's queue %s, so messages wait there for a worker", queue)
        return 0

    def drain(self, worker_id: str, timeout: float | None) -> None:
        """Tell ``worker_id`` to take no new job, finish its jobs (up to ``timeout``) and exit."""
        body = DrainCommand(worker_id=worker_id, timeout=timeout).to_body()
        with self._connection() as connection:
            producer = kombu.Producer(connection.default_channel)
            producer.publish(
                body,
                serializer="json",
                exchange=self.exchange,
                routing_key=control_key(self.prefix, worker_id),
                declare=[self.exchange],
                retry=True,
                retry_policy={"max_retries": 3},
            )
        log.info("sent drain to worker %s (timeout %s)", worker_id, timeout)
