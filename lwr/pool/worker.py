"""A pool worker's binding of one manager to the broker: the lease-holding consumer thread.

Several LWR processes with ``pool_worker = true`` consume the same manager's ``setup`` queue as
competing consumers; each asks the broker for at most ``slots`` unacknowledged setups at a time
(the channel's prefetch), so jobs spread over the workers as they have room.

Exactly one final status per job, whatever dies when:

* a setup message stays **unacknowledged while its job runs**: the delivery is the worker's lease
  on the job. If the worker dies (``kill -9``, a reclaimed instance: the connection closes or its
  heartbeat lapses), the broker gives the message to another worker, which runs the job again;
* the job's final status is published **in one AMQP transaction with the ack** of that delivery,
  on the channel that received it (``tx.select``; publish; ``basic.ack``; ``tx.commit``). Either
  both happen or neither does: there is no moment at which the status is out but the setup is
  still queued. A commit that fails leaves the outcome to the broker, and the worker gives the job
  up without ever publishing for it again (if the commit did land, the job is done; if not, the
  setup goes back to the queue). The delivery tag is also a fencing token: an ack of a delivery
  whose channel died is refused by the broker, and the refusal aborts the transaction's publish;
* every other status update of a held job goes out on the same channel, so none overtakes the
  final one, and nothing is sent for a job whose lease was lost (see :mod:`lwr.pool.leases`);
* a worker gives up every job it holds when its connection drops or it stops (it kills their
  processes, since the broker has already handed the setups to someone else), and at start-up it
  gives up whatever its job store says was unfinished or never announced;
* a worker that dies without a word (``kill -9``) takes its local jobs' processes along: each
  runs under a supervisor that kills the job's whole tree when the worker is gone
  (:mod:`lwr.pool.tether`), so no orphaned run goes on beside the rerun the broker hands out.

Galaxy's ``kill`` and ``status`` queues are competing too, so the worker that receives one passes
it on to every worker over the pool exchange (:class:`lwr.pool.protocol.JobRequest`); the holder
acts. Kills are also kept in the pool's kill ledger, which each session reads up to now before it
consumes a setup, so workers that came later know them too (:mod:`lwr.pool.kill_ledger`).
Everything runs on this one thread, so a kill is never handled between a setup's arrival and its
lease being recorded.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import kombu

from lwr import trace
from lwr.errors import ConfigurationError
from lwr.messaging.broker_thread import BACKOFF_START, BrokerThread, next_delay
from lwr.messaging.exchange import redact_url
from lwr.pool import protocol, tether
from lwr.pool.abandon import GivingUp
from lwr.pool.handlers import Handlers
from lwr.pool.hub_client import hub_timeout
from lwr.pool.kill_ledger import KillLedger
from lwr.pool.leases import LeaseTable, Outgoing
from lwr.pool.wakeup import Waker

if TYPE_CHECKING:
    from lwr.managers.stateful import StatefulManager
    from lwr.messaging.exchange import AmqpExchange
    from lwr.persistence.outbox import Outbox
    from lwr.persistence.store import JobRecord
    from lwr.pool.settings import PoolConfig

log = logging.getLogger(__name__)

#: seconds one wait for broker events lasts at most; a status update queued by a manager thread
#: ends the wait at once (lwr.pool.wakeup), so this paces only the heartbeat and drain checks
TICK = 0.1
#: prefetch of the kill/status queues (handled at once, acked at once)
REQUEST_PREFETCH = 16
#: a test-only crash point, inert unless set: ``before_commit:<job_id>`` / ``after_commit:<job_id>``
CRASH_ENV = "LWR_POOL_TEST_CRASH_AT"


def slots_of(manager: StatefulManager, configured: int) -> int:
    """Setups held at once: ``pool_slots``, else the manager's ``max_concurrent_jobs``."""
    slots = configured or manager.backend.max_concurrent_jobs
    if not slots:
        raise ConfigurationError(
            f"manager {manager.name}: a pool worker needs pool_slots when the manager has no "
            "max_concurrent_jobs"
        )
    return int(slots)


class PoolConsumer(GivingUp, Handlers, BrokerThread):
    """One manager's queues for a pool worker; see the module docstring."""

    def __init__(
        self,
        exchange: AmqpExchange,
        manager: StatefulManager,
        outbox: Outbox,
        settings: PoolConfig,
        on_drain: Callable[[float | None], None],
        endpoint: str | None = None,
    ) -> None:
        self.exchange = exchange
        self.manager = manager
        self.outbox = outbox
        self.settings = settings
        self.worker_id = settings.worker_id
        self.slots = slots_of(manager, settings.slots)
        self.endpoint = endpoint
        self.leases = LeaseTable()
        self.early_cancels = set()
        self.pool_exchange = kombu.Exchange(
            protocol.POOL_EXCHANGE, protocol.POOL_EXCHANGE_TYPE, durable=False
        )
        self.ledger = KillLedger(exchange.prefix, self.worker_id, self.on_ledger_kills)
        self.request_drain = on_drain
        self.ready = threading.Event()
        #: set once a drain finished (or gave up) and the last report went out
        self.done = threading.Event()
        self.on_done: Callable[[], None] = lambda: None
        self._drain_deadline: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._channel: Any = None  # the transactional setup channel of the live session
        self._plain: Any = None  # the other channel: kill/status, broadcasts, reports
        self._crash_at = os.environ.get(CRASH_ENV, "")
        self.waker = Waker()
        manager.listeners.append(self.on_change)
        self._hub_gone = threading.Event()
        tether.attach(manager.backend)  # its jobs are leased: they must not outlive this worker
        tether.on_hub_lost(self.on_hub_lost)
        tether.lifeline().hub_timeout = hub_timeout(configured=settings.hub_timeout)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.forget_unowned()
        self._start_thread(f"lwr-pool-{self.exchange.manager}")

    @property
    def draining(self) -> bool:
        return self._drain_deadline is not None

    def begin_drain(self, timeout: float) -> None:
        """Take no new setup; finish what is held within ``timeout`` seconds (thread-safe)."""
        if self._drain_deadline is None:
            self._drain_deadline = time.monotonic() + timeout
            log.info(
                "manager %s: draining (worker %s, %d job(s) held, timeout %.0fs)",
                self.manager.name,
                self.worker_id,
                len(self.leases),
                timeout,
            )

    # -- the listener (manager threads) -------------------------------------------------------

    def on_change(self, manager: StatefulManager, record: JobRecord) -> None:
        """Queue the status update of a held job for the consumer thread; drop any other."""
        if self.leases.get(record.job_id) is None:
            return
        final = record.state.is_final
        if final:
            trace.mark(self.manager.name, record.job_id, "final status queued")
        if self.leases.offer(record.job_id, manager.status_of(record), final):
            self.waker.wake()  # the consumer thread sends it now, not at its next tick

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_START
        while not self._stopping.is_set() and not self.done.is_set():
            try:
                self._session()
                delay = BACKOFF_START
            except Exception as exc:
                self.ready.clear()
                if "acknowledgement" in str(exc) and "timed out" in str(exc):
                    log.error(
                        "manager %s: the broker took this worker's jobs back because their "
                        "setups stayed unacknowledged longer than its consumer_timeout; raise "
                        "it above the longest job (docs/elastic_workers.md)",
                        self.exchange.manager,
                    )
                log.warning(
                    "manager %s: pool worker lost the broker %s (%s: %s); reconnecting in %.0fs",
                    self.exchange.manager,
                    redact_url(self.exchange.url),
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._stopping.wait(delay)
                delay = next_delay(delay)
            finally:
                self._give_up_all("the broker connection ended")
        self.ready.clear()

    def _session(self) -> None:
        with self.exchange.connection() as connection:
            connection.connect()
            self._channel = connection.channel()
            self._channel.basic_qos(0, self.slots, False)
            self._channel.tx_select()
            self._plain = connection.channel()
            self._plain.basic_qos(0, REQUEST_PREFETCH, False)
            setups = kombu.Consumer(
                self._channel,
                queues=[self._setup_queue()],
                callbacks=[self._on_setup],
                accept=["json"],
                on_decode_error=self._on_decode_error,
            )
            requests = kombu.Consumer(
                self._plain,
                queues=[self.exchange.queue("kill"), self.exchange.queue("status")],
                callbacks=[self._on_request],
                accept=["json"],
                on_decode_error=self._on_decode_error,
            )
            broadcasts = kombu.Consumer(
                self._plain,
                queues=[self._broadcast_queue()],
                callbacks=[self._on_broadcast],
                accept=["json"],
                no_ack=True,
            )
            self.ledger.prepare(connection)  # after every queue is declared: a kill sent now waits
            with requests, broadcasts:
                self.ledger.catch_up(connection)  # every kill recorded so far read before any setup
                if not self.draining:
                    setups.consume()
                self.ready.set()
                log.info(
                    "manager %s: consuming %s as pool worker %s (%d slots) on %s",
                    self.exchange.manager,
                    self.exchange.routing_key("setup"),
                    self.worker_id,
                    self.slots,
                    redact_url(self.exchange.url),
                )
                self._loop(connection, setups)

    def _setup_queue(self) -> kombu.Queue:
        """The setup queue as the client declares it, consumed with our ack timeout.

        ``x-consumer-timeout`` (RabbitMQ 3.11.15 and later; older brokers ignore it) lets this
        consumer hold a setup as long as its job runs, above the broker's 30-minute default.
        """
        milliseconds = int(self.settings.consumer_timeout * 1000)
        arguments = {"x-consumer-timeout": milliseconds} if milliseconds else None
        return self.exchange.queue("setup", consumer_arguments=arguments)

    def _broadcast_queue(self) -> kombu.Queue:
        prefix = self.exchange.prefix
        keys = (protocol.job_pattern(prefix), protocol.control_key(prefix, self.worker_id))
        return kombu.Queue(
            f"lwr_pool.{prefix}.{self.worker_id}.{os.getpid()}.{id(self):x}",
            bindings=[kombu.binding(self.pool_exchange, routing_key=key) for key in keys],
            exclusive=True,
            auto_delete=True,
            durable=False,
        )

    def _loop(self, connection: kombu.Connection, setups: kombu.Consumer) -> None:
        next_report = 0.0
        consuming = not self.draining
        while not self._stopping.is_set():
            self.waker.wait(connection, TICK)
            connection.heartbeat_check()
            self._flush()
            if consuming and self.draining:
                setups.cancel()  # the setup queue only: kill and status still reach us
                consuming = False
                log.info("manager %s: setup consumer cancelled (draining)", self.manager.name)
            if self.draining and self._drain_step():
                return
            if time.monotonic() >= next_report:
                self.report()
                next_report = time.monotonic() + self.settings.heartbeat_seconds

    def _drain_step(self) -> bool:
        """Whether the drain is over: nothing held any more, or the timeout handed it back."""
        assert self._drain_deadline is not None
        if len(self.leases) and time.monotonic() < self._drain_deadline:
            return False
        if len(self.leases):
            self._hand_back()
        log.info("manager %s: drained; worker %s leaves", self.manager.name, self.worker_id)
        self.report(gone=True)
        self.done.set()
        self.on_done()
        return True

    # -- sending -----------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send what the manager threads queued, in one transaction (one broker round trip).

        Each final status goes out with the ack of its setup in the same transaction, so a
        job's status and ack still take effect together; the jobs whose finals share a commit
        are only committed (or, if it fails, given up) together. Nothing of a lease given up, or
        after its final status, is sent.
        """
        self._ack_copies()
        batch: list[Outgoing] = []
        ended: set[int] = set()  # leases whose final status is in this batch
        for item in self.leases.pending():
            if not self.leases.is_current(item.lease) or item.lease.serial in ended:
                continue  # produced under a lease given up since, or after its final: never sent
            batch.append(item)
            if item.final:
                ended.add(item.lease.serial)
        if self._hub_check() or not batch:
            return
        finals = [item for item in batch if item.final]
        for item in batch:
            self.exchange.publish_on(self._channel, "status_update", item.body)
            if item.final:
                item.lease.acked = len(item.lease.deliveries)
                for delivery in item.lease.deliveries:
                    self._channel.basic_ack(delivery.delivery_tag)
        for item in finals:
            self._crash_point("before_commit", item.lease.job_id)
        try:
            self._channel.tx_commit()
        except Exception:
            for item in finals:
                self._commit_failed(item.lease.job_id)
            raise
        for item in finals:
            job_id = item.lease.job_id
            self._crash_point("after_commit", job_id)
            trace.mark(self.manager.name, job_id, "final status committed")
            self._announced(job_id)
            if job_id in self.early_cancels:  # cancelled for a kill that came first: used up
                self.early_cancels.discard(job_id)
                self.outbox.exhume(self.manager.name, job_id)
            self.leases.release(item.lease, finished=True)
            self.ledger.resends.finished(job_id)  # copies of its setup redelivered now: not run
            log.info("job %s/%s: final status %s published and setup acknowledged",
                     self.manager.name, job_id, item.body.get("status"))  # fmt: skip
        self._ack_late([item.lease for item in finals])

    def _commit_failed(self, job_id: str) -> None:
        """Name the job whose final commit failed: the one case the lease cannot decide.

        A failed connection makes the broker apply the transaction wholly or not at all, and the
        job is then done or runs again elsewhere. A *broker crash* during the commit may apply it
        to one of its two queues only (docs/elastic_workers.md): an operator needs the job id.
        """
        log.error(
            "job %s/%s: committing its final status and setup acknowledgement failed; if the "
            "broker crashed during the commit, Galaxy may get this job's final status twice or "
            "never (see 'a broker crash during a commit' in docs/elastic_workers.md)",
            self.manager.name,
            job_id,
        )

    def _announced(self, job_id: str) -> None:
        record = self.manager.find(job_id)
        if record is not None and record.state.is_final:
            self.outbox.note_announced(
                self.manager.name, job_id, record.attempt, record.state.value
            )

    def report(self, gone: bool = False) -> None:
        """Publish this worker's load report (best effort: a lost one is replaced soon)."""
        body = protocol.LoadReport(
            worker_id=self.worker_id,
            manager=self.manager.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            slots=self.slots,
            jobs_held=len(self.leases),
            draining=self.draining,
            jobs_received_total=self.leases.received_total,
            jobs_finished_total=self.leases.finished_total,
            sent_at=time.time(),
            gone=gone,
            endpoint=self.endpoint,
        ).to_body()
        kombu.Producer(self._plain).publish(
            body,
            serializer="json",
            exchange=self.pool_exchange,
            routing_key=protocol.load_key(self.exchange.prefix),
            declare=[self.pool_exchange],
        )

    def answer(self, body: dict[str, Any]) -> None:
        """Publish a solicited status (a status request for a job finished here) at once."""
        self.exchange.publish_on(self._channel, "status_update", body)
        self._channel.tx_commit()

    def _crash_point(self, where: str, job_id: str) -> None:
        """Tests only (inert unless $LWR_POOL_TEST_CRASH_AT is set): die here as kill -9 would."""
        if self._crash_at and self._crash_at == f"{where}:{job_id}":
            log.warning("test crash point %s:%s reached: SIGKILL", where, job_id)
            os.kill(os.getpid(), signal.SIGKILL)
