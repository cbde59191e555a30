"""Requests in: one thread per manager consuming its ``setup``, ``kill`` and ``status`` queues.

Reliability rules, each the answer to a way Galaxy jobs get lost:

* a message is acked only after what it asked for is durable (``StatefulManager.submit`` has
  returned, so the job is in the job store); if LWR dies before the ack, the broker redelivers and
  the duplicate submit is ignored by the manager;
* a setup for a job whose last attempt is final starts a new attempt when it is a new message —
  Galaxy resubmits failed jobs under the same id — but not when it is the message that started
  that attempt, redelivered or resent (:mod:`lwr.messaging.attempts`);
* a body that is not what the client sends (not JSON, JSON nested deeper than HTTP parameters
  may be — :mod:`lwr.jsondepth` — or of the wrong shape) is logged and rejected without
  requeueing, so one bad message can neither stop the consumer nor loop forever; the broker
  drops it, or dead-letters it where the operator set a dead-letter policy on the queues (LWR
  cannot declare one itself: Galaxy's client declares the same queues without arguments, and a
  queue declared twice with different arguments is refused). An unexpected error is requeued
  once and rejected the second time;
* when the connection drops the thread reconnects with exponential back-off and resumes (messages
  not acked on the old channel are redelivered by the broker);
* a message carrying ``acknowledge_uuid`` is answered on its ``<name>_ack`` queue after it was
  handled, and remembered durably, so the client's resends are answered but not acted on again;
* a kill may come before its job's setup (two queues, no order between them): it is remembered
  durably (:data:`~lwr.persistence.outbox.EARLY_KILL_MEMORY`) and the setup, when it comes,
  records the job cancelled without running it and announces that final status.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import kombu
from kombu.message import Message

from lwr import jsondepth
from lwr.errors import InvalidRequestError, LwrError, UnknownJobError
from lwr.managers.base import JobState
from lwr.messaging import attempts, messages
from lwr.messaging.broker_thread import BACKOFF_START, BrokerThread, next_delay
from lwr.messaging.exchange import AmqpExchange, redact_url
from lwr.persistence.outbox import EARLY_KILL_MEMORY

if TYPE_CHECKING:
    from lwr.managers.stateful import StatefulManager
    from lwr.messaging.publisher import StatusPublisher
    from lwr.persistence.outbox import Outbox

log = logging.getLogger(__name__)

#: messages the broker hands over before they are acked
PREFETCH = 16
#: seconds one wait for messages lasts before heartbeats and the stop flag are checked
DRAIN_TIMEOUT = 1.0
#: how many failed message bodies are remembered to reject their redelivery
FAILED_MEMORY = 1000


class RequestConsumer(BrokerThread):
    """Consumes one manager's request queues and acts on them."""

    def __init__(
        self,
        exchange: AmqpExchange,
        manager: StatefulManager,
        publisher: StatusPublisher,
        outbox: Outbox,
        consume_acks: bool = False,
    ) -> None:
        self.exchange = exchange
        self.manager = manager
        self.publisher = publisher
        self.outbox = outbox
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "setup": self._setup,  # called with the delivery's redelivered flag (_on_message)
            "kill": self._kill,
            "status": self._status,
        }
        if consume_acks:
            self.handlers["status_update_ack"] = self._status_update_ack
        self._by_key = {exchange.routing_key(name): name for name in self.handlers}
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: kombu.Connection | None = None
        self._failed: OrderedDict[str, None] = OrderedDict()

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._start_thread(f"lwr-amqp-consume-{self.exchange.manager}")

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_START
        while not self._stopping.is_set():
            try:
                self._consume()
                delay = BACKOFF_START
            except Exception as exc:
                self.ready.clear()
                was_ready = delay == BACKOFF_START
                log.log(
                    logging.WARNING if was_ready else logging.INFO,
                    "manager %s: broker %s unavailable (%s: %s); reconnecting in %.0fs",
                    self.exchange.manager,
                    redact_url(self.exchange.url),
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._stopping.wait(delay)
                delay = next_delay(delay)

    def _consume(self) -> None:
        with self.exchange.connection() as connection:
            connection.connect()
            self._connection = connection
            channel = connection.channel()
            channel.basic_qos(0, PREFETCH, False)
            queues = [self.exchange.queue(name) for name in self.handlers]
            consumer = kombu.Consumer(
                channel,
                queues=queues,
                callbacks=[self._on_message],
                accept=["json"],
                on_decode_error=self._on_decode_error,
            )
            with consumer:
                self.ready.set()
                log.info(
                    "manager %s: consuming %s on %s",
                    self.exchange.manager,
                    ", ".join(q.name for q in queues),
                    redact_url(self.exchange.url),
                )
                while not self._stopping.is_set():
                    try:
                        connection.drain_events(timeout=DRAIN_TIMEOUT)
                    except TimeoutError:
                        pass
                    connection.heartbeat_check()
            self.ready.clear()
            self._connection = None

    # -- one message -------------------------------------------------------------------------

    def _on_decode_error(self, message: Message, exc: Exception) -> None:
        """Not JSON, or JSON nested so deep that decoding it exhausted Python's recursion.

        Rejected without requeue (see :meth:`_on_message`); the consumer goes on with the next.
        """
        why = str(exc)
        if "recursion" in why:
            why = jsondepth.too_deep("message body").message
        log.warning(
            "manager %s: rejecting undecodable message on %s (%s): %s",
            self.exchange.manager,
            message.delivery_info.get("routing_key"),
            message.content_type,
            why,
        )
        message.reject()

    def _on_message(self, body: Any, message: Message) -> None:
        """Handle, then ack; reject what is malformed; requeue one unexpected failure."""
        key = message.delivery_info.get("routing_key", "")
        name = self._by_key.get(key)
        outcome = "ack"
        try:
            if name is None:
                raise InvalidRequestError(f"message for an unexpected routing key {key!r}")
            body = messages.body_dict(body)
            ack = messages.ack_request(body) if name != "status_update_ack" else None
            if ack is not None and self.outbox.consumed_before(ack[0]):
                log.info(
                    "manager %s: %s message %s already handled; acknowledging it again",
                    self.exchange.manager,
                    name,
                    ack[0],
                )
            elif name == "setup":
                self._setup(body, bool(message.delivery_info.get("redelivered")))
                if ack is not None:
                    self.outbox.remember_consumed(ack[0], self.exchange.manager)
            else:
                self.handlers[name](body)
                if ack is not None:
                    self.outbox.remember_consumed(ack[0], self.exchange.manager)
            if ack is not None:
                self._reply(ack[1], ack[0])
        except InvalidRequestError as exc:
            log.warning(
                "manager %s: rejecting malformed %s message: %s",
                self.exchange.manager,
                name or key,
                exc.message,
            )
            outcome = "reject"
        except Exception:
            retried = self._failed_before(message)
            log.exception(
                "manager %s: handling a %s message failed%s",
                self.exchange.manager,
                name,
                "; rejecting it" if retried else "; requeueing it once",
            )
            outcome = "reject" if retried else "requeue"
        # outside the try: a failure to settle means the connection is gone -> reconnect
        if outcome == "ack":
            message.ack()
        elif outcome == "requeue":
            message.requeue()
        else:
            message.reject()

    def _failed_before(self, message: Message) -> bool:
        """Whether this message already failed once (the broker's flag, or our own memory).

        RabbitMQ marks a requeued message ``redelivered``; not every transport does, so the
        consumer also remembers the digests of recently failed bodies.
        """
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        digest = hashlib.sha256(body).hexdigest()
        if message.delivery_info.get("redelivered") or digest in self._failed:
            self._failed.pop(digest, None)
            return True
        self._failed[digest] = None
        while len(self._failed) > FAILED_MEMORY:
            self._failed.popitem(last=False)
        return False

    def _reply(self, ack_queue: str, uuid: str) -> None:
        """Answer an acknowledgement request; a lost answer only makes the client resend."""
        connection = self._connection
        if connection is None:
            return
        try:
            self.exchange.publish(connection, ack_queue, messages.ack_reply(uuid))
        except Exception as exc:
            log.warning(
                "manager %s: could not acknowledge %s on %s: %s",
                self.exchange.manager,
                uuid,
                ack_queue,
                exc,
            )

    # -- the requests ------------------------------------------------------------------------

    def _setup(self, body: dict[str, Any], redelivered: bool = False) -> None:
        """Set up and queue the job; one refused is reported ``failed`` so Galaxy stops waiting."""
        job_id = messages.job_id_of(body)
        killed = self.outbox.buried(self.exchange.manager, job_id, time.time() - EARLY_KILL_MEMORY)
        try:
            _, launch = messages.setup_launch(body)
            if killed:
                self._cancel_unstarted(job_id, launch)
                return
            origin = attempts.identity(body)
            self._new_attempt_if_resubmitted(job_id, launch, origin, redelivered)
            self.manager.submit(job_id, {**launch, attempts.ORIGIN: origin})
        except LwrError as exc:
            log.warning(
                "job %s/%s: setup message refused: %s", self.exchange.manager, job_id, exc.message
            )
            record = self.manager.find(job_id)
            if record is None or record.state is JobState.SETUP:  # never touch a live job
                reason = f"setup failed: {exc.message}"
                self.publisher.enqueue(messages.failed_status(job_id, reason))
            if isinstance(exc, InvalidRequestError):
                raise

    def _new_attempt_if_resubmitted(
        self, job_id: str, launch: dict[str, Any], origin: str, redelivered: bool
    ) -> None:
        """Set a finished job up afresh when this setup is Galaxy's resubmission of it.

        The new attempt (record in ``setup``, directory emptied) is durable before the submit
        that queues it: a crash in between leaves a job in ``setup``, which the redelivered
        message then submits. Otherwise the submit that follows ignores the duplicate.
        """
        record = self.manager.find(job_id)
        if record is None or not record.state.is_final or record.state is JobState.CANCELLED:
            return  # Galaxy never resubmits a job it killed (nor one killed before its setup)
        started_by = (record.launch or {}).get(attempts.ORIGIN)
        if not attempts.starts_new_attempt(origin, redelivered, started_by):
            return
        previous = (record.launch or {}).get("setup") or {}
        meta = launch.get("setup_params") or previous
        log.info(
            "job %s/%s: setup for a job whose attempt %d is %s: Galaxy resubmitted it",
            self.exchange.manager,
            job_id,
            record.attempt,
            record.state.value,
        )
        self.manager.setup(job_id, meta.get("tool_id"), meta.get("tool_version"))

    def _cancel_unstarted(self, job_id: str, launch: dict[str, Any]) -> None:
        """The setup of a job whose kill came first: record it cancelled, never run it.

        The job is set up (its directory and record exist, so status and clean work as for any
        job) and cancelled through the manager, whose listener announces the final status. The
        early kill is forgotten only after that: a crash in between leaves the kill remembered,
        so the redelivered setup lands here again and finds the job set up or already cancelled.
        """
        manager = self.exchange.manager
        record = self.manager.find(job_id)
        if record is None or not record.state.is_final:
            log.info("job %s/%s: setup of a job killed before it came; cancelled", manager, job_id)
            if record is None:
                meta = launch.get("setup_params") or {}
                self.manager.setup(job_id, meta.get("tool_id"), meta.get("tool_version"))
            self.manager.cancel(job_id)
        self.outbox.exhume(manager, job_id)

    def _kill(self, body: dict[str, Any]) -> None:
        """Cancel the job; a kill for a finished job changes nothing.

        Galaxy sends one when it fails a job LWR reported ``failed`` or ``lost`` (also before it
        resubmits it). The kill carries no attempt: one consumed after the resubmission's setup
        (the two queues are not ordered) cancels the new attempt (:mod:`lwr.messaging.attempts`).
        """
        job_id = messages.job_id_of(body)
        record = self.manager.find(job_id)
        if record is not None and record.state.is_final:
            log.info(
                "job %s/%s: kill for attempt %d, already %s; nothing to do",
                self.exchange.manager,
                job_id,
                record.attempt,
                record.state.value,
            )
            return
        try:
            self.manager.cancel(job_id)
        except UnknownJobError:
            self.outbox.bury(self.exchange.manager, job_id)
            log.info(
                "job %s/%s: kill came before the job's setup; remembered, so it will not run",
                self.exchange.manager,
                job_id,
            )
        except LwrError as exc:
            log.warning("job %s/%s: kill failed: %s", self.exchange.manager, job_id, exc.message)

    def _status(self, body: dict[str, Any]) -> None:
        """Republish the job's status; an unknown job is ignored (its setup may be queued)."""
        job_id = messages.job_id_of(body)
        record = self.manager.find(job_id)
        if record is None:
            log.info("job %s/%s: status request for an unknown job", self.exchange.manager, job_id)
            return
        self.publisher.enqueue(self.manager.status_of(record))

    def _status_update_ack(self, body: dict[str, Any]) -> None:
        uuid = messages.ack_response(body)
        if not self.outbox.acknowledge(uuid):
            log.debug(
                "manager %s: status update %s already acknowledged", self.exchange.manager, uuid
            )
