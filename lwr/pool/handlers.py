"""What a pool worker does with each message it receives (setups, kill/status, pool broadcasts).

Split from :mod:`lwr.pool.worker` to keep each module readable; :class:`Handlers` is only ever a
base of :class:`~lwr.pool.worker.PoolConsumer`, whose attributes it declares below. Every method
runs on the consumer thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import kombu
from kombu.message import Message

from lwr import trace
from lwr.errors import InvalidRequestError, LwrError
from lwr.messaging import messages
from lwr.persistence.outbox import EARLY_KILL_MEMORY
from lwr.pool import protocol
from lwr.pool.leases import Lease, LeaseTable

if TYPE_CHECKING:
    from lwr.managers.stateful import StatefulManager
    from lwr.messaging.exchange import AmqpExchange
    from lwr.persistence.outbox import Outbox
    from lwr.pool.kill_ledger import KillLedger
    from lwr.pool.wakeup import Waker

log = logging.getLogger(__name__)

#: Galaxy's acknowledgement request of a message: (uuid, reply queue)
Ack = tuple[str, str]


def cancelled_status(job_id: str, reason: str) -> dict[str, Any]:
    """The final status of a job killed before any worker ran it."""
    status = messages.failed_status(job_id, reason)
    status["status"] = "cancelled"
    return status


class Handlers:
    """The message handlers of a pool worker; see the module docstring."""

    exchange: AmqpExchange
    manager: StatefulManager
    outbox: Outbox
    leases: LeaseTable
    worker_id: str
    pool_exchange: kombu.Exchange
    ledger: KillLedger
    #: jobs answered ``cancelled`` because their kill came first, until that final is committed
    early_cancels: set[str]
    request_drain: Callable[[float | None], None]
    waker: Waker
    _channel: Any
    _plain: Any

    def broadcast(self, request: protocol.JobRequest) -> None:
        kombu.Producer(self._plain).publish(
            request.to_body(),
            serializer="json",
            exchange=self.pool_exchange,
            routing_key=protocol.job_key(self.exchange.prefix, request.action),
            declare=[self.pool_exchange],
        )

    def answer(self, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def _discard(self, job_id: str) -> None:
        raise NotImplementedError

    # -- setup: the lease --------------------------------------------------------------------

    def _on_setup(self, body: Any, message: Message) -> None:
        """A setup: claimed first when Galaxy may resend it, then started (:meth:`_start`)."""
        try:
            body = messages.body_dict(body)
            job_id = messages.job_id_of(body)
            ack = messages.ack_request(body)
        except InvalidRequestError as exc:
            log.warning("manager %s: rejecting malformed setup: %s", self.manager.name, exc.message)
            self._channel.basic_reject(message.delivery_tag, requeue=False)
            self._channel.tx_commit()
            return
        trace.mark(self.manager.name, job_id, "setup received")
        held = self.leases.get(job_id)
        if held is None and ack is not None:
            self._claim(job_id, body, message, ack)
            return
        if ack is not None:
            self._reply(*ack)
        self._start(job_id, body, message)

    def _claim(self, job_id: str, body: dict[str, Any], message: Message, ack: Ack) -> None:
        """A setup Galaxy may resend: run it only if it is the first of its uuid in the pool.

        See :mod:`lwr.pool.resends`; Galaxy's acknowledgement request is answered only once the
        claim is in the ledger, so a setup Galaxy stops resending is never forgotten.
        """
        resends = self.ledger.resends
        redelivered = bool(message.delivery_info.get("redelivered"))

        def decide(won: bool) -> None:
            self._reply(*ack)
            if won or (redelivered and not resends.ended(ack[0])):
                resends.started(job_id, ack[0])
                self._start(job_id, body, message)
                return
            log.info("job %s/%s: a copy of a setup taken before (%s); not run again",
                     self.manager.name, job_id, ack[0])  # fmt: skip
            self._drop(job_id, message)

        if resends.known(ack[0]):
            decide(False)
        else:
            resends.claim(job_id, ack[0], then=decide)

    def _start(self, job_id: str, body: dict[str, Any], message: Message) -> None:
        """Take the job (its delivery stays unacked: the lease) and queue it with the manager."""
        held = self.leases.get(job_id)
        if held is not None:  # a resent copy of a job held here: one lease, acked together
            log.info("job %s/%s: setup received again while held", self.manager.name, job_id)
            held.deliveries.append(message)
            return
        if self.manager.find(job_id) is not None:
            self._discard(job_id)  # an earlier attempt of this worker's; this setup starts anew
        self.leases.take(job_id, message)
        if self.outbox.buried(self.manager.name, job_id, time.time() - EARLY_KILL_MEMORY):
            log.info("job %s/%s: killed before it started", self.manager.name, job_id)
            self.early_cancels.add(job_id)  # its kill is forgotten once this final is committed
            reason = "cancelled by the client before it started"
            self.leases.offer(job_id, cancelled_status(job_id, reason), final=True)
            return
        try:
            _, launch = messages.setup_launch(body)
            self.manager.submit(job_id, launch)
        except LwrError as exc:
            log.warning("job %s/%s: setup refused: %s", self.manager.name, job_id, exc.message)
            status = messages.failed_status(job_id, f"setup failed: {exc.message}")
            self.leases.offer(job_id, status, final=True)
        except Exception as exc:
            log.exception("job %s/%s: setup failed", self.manager.name, job_id)
            status = messages.failed_status(job_id, f"setup failed: {type(exc).__name__}: {exc}")
            self.leases.offer(job_id, status, final=True)

    def _ack_late(self, ended: list[Lease]) -> None:
        """Queue the acks of copies that joined a lease while its final's commit was awaited.

        py-amqp hands the consumer deliveries that arrive while it waits for ``tx.commit-ok``
        (the broker frees the prefetch slot at the ack, before the commit); a copy of the job
        landing then joined a lease whose acks were already sent. Left alone it would stay
        unacked for the worker's life, taking a slot of its prefetch for good.
        """
        for lease in ended:
            for delivery in lease.deliveries[lease.acked :]:
                self._drop(lease.job_id, delivery)
            lease.acked = len(lease.deliveries)

    def _drop(self, job_id: str, delivery: Message) -> None:
        """Have a copy acked, not run, by the next :meth:`_ack_copies` (not here: a handler may
        run inside another commit's wait, and a commit nested in it breaks the channel)."""
        self.ledger.resends.copies.append((job_id, delivery))
        self.waker.wake()

    def _ack_copies(self) -> None:
        """Ack the copies queued by :meth:`_drop`, in one commit; called outside any handler."""
        copies, self.ledger.resends.copies = self.ledger.resends.copies, []
        live = [(job, d) for job, d in copies if d.channel is self._channel]  # else: requeued
        for _, delivery in live:
            self._channel.basic_ack(delivery.delivery_tag)
        if live:
            self._channel.tx_commit()
            log.info("manager %s: %d copies of setups taken before acknowledged (%s)",
                     self.manager.name, len(live), ", ".join(job for job, _ in live))  # fmt: skip

    def _on_decode_error(self, message: Message, exc: Exception) -> None:
        log.warning("manager %s: rejecting undecodable message: %s", self.manager.name, exc)
        message.channel.basic_reject(message.delivery_tag, requeue=False)
        if message.channel is self._channel:
            self._channel.tx_commit()

    def _reply(self, uuid: str, ack_queue: str) -> None:
        """Answer the client's application-level acknowledgement request."""
        try:
            self.exchange.publish_on(self._plain, ack_queue, messages.ack_reply(uuid))
        except Exception as exc:  # the client resends; the lease makes that harmless here
            log.warning("manager %s: could not acknowledge %s: %s", self.manager.name, uuid, exc)

    # -- kill and status from Galaxy: passed on to the whole pool ----------------------------------

    def _on_request(self, body: Any, message: Message) -> None:
        key = message.delivery_info.get("routing_key", "")
        action = "kill" if key == self.exchange.routing_key("kill") else "status"
        try:
            body = messages.body_dict(body)
            job_id = messages.job_id_of(body)
            ack = messages.ack_request(body)
        except InvalidRequestError as exc:
            log.warning("manager %s: rejecting malformed %s: %s", self.manager.name, action, exc)
            message.reject()
            return

        def pass_on() -> None:
            self.broadcast(protocol.JobRequest(job_id, action, self.worker_id))
            if ack is not None:
                self._reply(*ack)
            message.ack()

        if action == "kill":  # Galaxy's message is acked once the ledger has the kill
            self.ledger.record(job_id, then=pass_on)
        else:
            pass_on()

    def _on_broadcast(self, body: Any, message: Message) -> None:
        """A pool message: a drain command to this worker, or a job request to every worker."""
        key = message.delivery_info.get("routing_key", "")
        try:
            if key.startswith(f"{self.exchange.prefix}.control."):
                command = protocol.DrainCommand.from_body(body)
                log.info("manager %s: drain command received", self.manager.name)
                self.request_drain(command.timeout)
                return
            request = protocol.JobRequest.from_body(body)
            job_id = messages.job_id_of({"job_id": request.job_id})
        except InvalidRequestError as exc:
            log.warning("manager %s: ignoring pool message on %s: %s", self.manager.name, key, exc)
            return
        if request.action == "kill":
            self._kill(job_id, request.origin)
        else:
            self._status(job_id)

    def on_ledger_kills(self, entries: list[protocol.LedgerEntry]) -> None:
        """Kills read from the pool's kill ledger (:mod:`lwr.pool.kill_ledger`).

        The holder cancels its job as for a broadcast kill; any other job's kill is remembered
        with the time of the kill itself (so the memory window is the same on every worker), all
        in one commit: a catch-up brings up to a day of kills at once.
        """
        unheld: list[tuple[str, float]] = []
        for entry in entries:
            try:
                job_id = messages.job_id_of({"job_id": entry.job_id})
            except InvalidRequestError as exc:
                log.warning("manager %s: ignoring a ledger kill: %s", self.manager.name, exc)
                continue
            if self.leases.get(job_id) is not None:
                self._kill(job_id, entry.origin)
                continue
            unheld.append((job_id, entry.at))
            log.info("job %s/%s: kill read from the pool's ledger (taken by worker %s); "
                     "remembered", self.manager.name, job_id, entry.origin)  # fmt: skip
        if unheld:
            self.outbox.bury_many(self.manager.name, unheld)

    def _kill(self, job_id: str, origin: str) -> None:
        if self.leases.get(job_id) is None:
            self.outbox.bury(self.manager.name, job_id)  # its setup may still wait in the queue
            log.info("job %s/%s: kill for a job not held here; remembered", self.manager.name,
                     job_id)  # fmt: skip
            return
        log.info("job %s/%s: kill (received by worker %s)", self.manager.name, job_id, origin)
        try:
            self.manager.cancel(job_id)
        except LwrError as exc:
            log.warning("job %s/%s: kill failed: %s", self.manager.name, job_id, exc.message)

    def _status(self, job_id: str) -> None:
        """The holder republishes the job's status; a job finished here is answered from the store.

        A held job already final sends nothing: its final status is on its way (exactly once).
        """
        record = self.manager.find(job_id)
        if record is None:
            return
        if self.leases.get(job_id) is not None:
            if not record.state.is_final:
                self.leases.offer(job_id, self.manager.status_of(record), final=False)
            return
        told = self.outbox.announcements(self.manager.name).get(job_id)
        if record.state.is_final and told == (record.attempt, record.state.value):
            self.answer(self.manager.status_of(record))
