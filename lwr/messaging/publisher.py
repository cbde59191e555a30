"""Status updates out: a StatefulManager listener feeding the durable outbox, drained by a thread.

The listener only writes to the outbox (a local SQLite insert), so a job transition never waits
for, or fails because of, the broker. One thread per manager publishes what the outbox holds, in
order, on a connection with publisher confirms; an entry is removed only once the broker confirmed
it. When the broker is away the thread backs off and tries again; what piles up meanwhile (or
across a restart of LWR) goes out when it is back.

With ``amqp_acknowledge`` every update also asks Galaxy to acknowledge it; an update not
acknowledged within ``amqp_ack_republish_time`` is published again (marked ``force_noack``, as the
client does) until it is.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import kombu

from lwr.managers.base import FINAL_STATES
from lwr.messaging.exchange import ACK_QUEUE, ACK_SUBMIT_QUEUE, ACK_SUFFIX, ACK_UUID, FORCE_NOACK
from lwr.persistence.outbox import Outbox, OutboxEntry

if TYPE_CHECKING:
    from lwr.managers.stateful import StatefulManager
    from lwr.messaging.exchange import AmqpExchange
    from lwr.persistence.store import JobRecord

log = logging.getLogger(__name__)

STATUS_UPDATE = "status_update"

#: seconds between passes when nothing wakes the thread (heartbeats, republishing)
IDLE_WAIT = 1.0
#: back-off after a failed pass: first wait and ceiling, in seconds
BACKOFF_START, BACKOFF_MAX = 0.5, 15.0


class StatusPublisher:
    """Publishes one manager's status updates from the outbox."""

    def __init__(
        self,
        exchange: AmqpExchange,
        outbox: Outbox,
        acknowledge: bool = False,
        republish_time: float = 30.0,
    ) -> None:
        self.exchange = exchange
        self.manager = exchange.manager
        self.outbox = outbox
        self.acknowledge = acknowledge
        self.republish_time = republish_time
        self._connection: kombu.Connection | None = None
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.published_count = 0

    # -- producing ---------------------------------------------------------------------------

    def on_change(self, manager: StatefulManager, record: JobRecord) -> None:
        """The StatefulManager listener: queue the job's status dictionary for publishing.

        A service user's job (lwr.service) is never announced: the queue is the admin's
        (Galaxy's), and a user's job id may equal one of Galaxy's own.
        """
        if record.owner is None:
            self.enqueue(manager.status_of(record), record)

    def announce_missed(self, manager: StatefulManager) -> int:
        """Announce the final states the store holds but the outbox never recorded.

        A ``kill -9`` between a job's final state reaching the job store and its update reaching
        the outbox (two SQLite files, two commits) would otherwise leave a message-queue client,
        which never polls, waiting forever. Only jobs finished since the outbox began recording
        announcements are considered. Announcements of jobs the store no longer holds are
        forgotten. Returns how many final states were announced now.
        """
        told = self.outbox.announcements(self.manager)
        since = self.outbox.announced_since()
        finished = manager.store.in_states(manager.name, FINAL_STATES)
        missed = [
            record
            for record in finished
            if record.owner is None
            and record.updated >= since
            and told.get(record.job_id) != (record.attempt, record.state.value)
        ]
        for record in missed:
            log.warning(
                "job %s/%s: final state %s was never announced (a crash before its update was "
                "kept); announcing it now",
                self.manager,
                record.job_id,
                record.state.value,
            )
            self.enqueue(manager.status_of(record), record)
        self.outbox.forget_announced(self.manager, told.keys() - {r.job_id for r in finished})
        return len(missed)

    def enqueue(self, status: Mapping[str, Any], record: JobRecord | None = None) -> None:
        """Keep ``status`` durably for publishing and wake the publishing thread.

        With the job's ``record`` in a final state, the outbox also notes it as announced.
        """
        body = dict(status)
        ack_uuid = None
        if self.acknowledge:
            ack_uuid = uuid.uuid4().hex
            body[ACK_UUID] = ack_uuid
            body[ACK_QUEUE] = STATUS_UPDATE + ACK_SUFFIX
            body[ACK_SUBMIT_QUEUE] = STATUS_UPDATE
        final = None
        if record is not None and record.state.is_final:
            final = (record.job_id, record.attempt, record.state.value)
        self.outbox.put(self.manager, STATUS_UPDATE, body, ack_uuid, final)
        log.debug(
            "job %s/%s: status %s queued for publishing",
            self.manager,
            body.get("job_id"),
            body.get("status"),
        )
        self._wakeup.set()

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"lwr-amqp-publish-{self.manager}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current pass; anything unpublished stays in the outbox for next time."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()

    def flush(self) -> None:
        """Wake the thread now (tests, and the status-request path, use it)."""
        self._wakeup.set()

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_START
        while not self._stopping.is_set():
            self._wakeup.wait(IDLE_WAIT)
            self._wakeup.clear()
            if self._stopping.is_set():
                break
            try:
                self._pass()
            except Exception as exc:
                self._close()
                pending = self.outbox.count(self.manager, unpublished_only=True)
                log.warning(
                    "manager %s: publishing status updates failed (%s: %s); %d kept in the "
                    "outbox, retrying in %.1fs",
                    self.manager,
                    type(exc).__name__,
                    exc,
                    pending,
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                self._wakeup.set()  # try again straight after the back-off
            else:
                delay = BACKOFF_START

    def _pass(self) -> None:
        """Publish everything unpublished, then republish what waits too long for an ack."""
        connection = self._connect()
        connection.heartbeat_check()
        while not self._stopping.is_set():
            entries = self.outbox.unpublished(self.manager)
            if not entries:
                break
            for entry in entries:
                self._publish(connection, entry, entry.body)
        if self.acknowledge:
            due = time.time() - self.republish_time
            for entry in self.outbox.unacknowledged(self.manager, due):
                log.info(
                    "job %s/%s: status %s not acknowledged; publishing it again",
                    self.manager,
                    entry.body.get("job_id"),
                    entry.body.get("status"),
                )
                self._publish(connection, entry, {**entry.body, FORCE_NOACK: True})

    def _publish(
        self, connection: kombu.Connection, entry: OutboxEntry, body: Mapping[str, Any]
    ) -> None:
        self.exchange.publish(connection, entry.queue, body)
        self.outbox.published(entry)
        self.published_count += 1
        log.debug(
            "job %s/%s: published status %s",
            self.manager,
            body.get("job_id"),
            body.get("status"),
        )

    def _connect(self) -> kombu.Connection:
        if self._connection is None:
            connection = self.exchange.connection(confirm_publish=True)
            connection.connect()
            self._connection = connection
            log.info(
                "manager %s: publishing status updates to %s",
                self.manager,
                self.exchange.routing_key(STATUS_UPDATE),
            )
        return self._connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception as exc:  # a dead connection may fail to close; it is gone anyway
                log.debug("closing the publishing connection: %s", exc)
