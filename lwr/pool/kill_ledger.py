"""The pool's kill ledger: every kill Galaxy sent, kept by the broker for the kill memory window.

Why it exists. Galaxy's ``kill`` and ``setup`` travel on two queues the broker does not order, so
a kill may be consumed while the job's setup still waits. The worker that takes the kill passes
it to the pool (:class:`lwr.pool.protocol.JobRequest` on the ``lwr_pool`` exchange) and every
worker that hears it remembers it on disk (the outbox's ``early_kills``). That exchange only
reaches the workers connected at that moment: a worker started, restarted or reconnected *after*
the kill never heard it, and if the broker then hands it the setup it runs a job Galaxy already
cancelled. An elastic pool makes that the common case, not the rare one: the balancer starts
workers for a backlog, and the killed job is part of that backlog.

What it is. A durable RabbitMQ **stream** per pool, ``<prefix>_lwr_pool_kills`` (the manager's
queue prefix, so pools never share one). A stream is an append-only log that consumers read
without removing anything, from any point: every worker, however late it comes, can read every
kill recorded since the window began. The broker drops segments older than the window
(``x-max-age``); the worker also ignores entries older than the window itself.

* **Recording.** The worker that takes Galaxy's kill from the ``kill`` queue appends it to the
  ledger and acknowledges Galaxy's message only once the broker confirmed the entry (publisher
  confirms). If it dies before the confirm, Galaxy's kill goes back to the ``kill`` queue and
  another worker records it; if it dies between the confirm and the ack, the kill is recorded
  twice, which is harmless (remembering a kill is idempotent). So a kill consumed is never lost,
  whoever dies.
* **Reading.** At the start of each broker session (its first start, a restart, a reconnect) a
  worker subscribes to the ledger from ``now - window``, appends a *mark* with a token of its own,
  and reads until it meets that mark, remembering every kill on the way; only then does it start
  consuming setups. The stream is a single log, so every kill confirmed before the mark was
  appended lies before it: nothing recorded before the worker began consuming setups can be
  missed. The subscription stays open for the whole session, so later kills arrive live, like
  the exchange's broadcast (which is kept: workers of an older release only hear that).
  A live kill and a setup of the same job, taken in either order by the one consumer thread, end
  the same way: the kill first is remembered and the setup answered ``cancelled``; the setup first
  makes this worker the holder, and the kill cancels it.
* **Failing closed.** A worker that cannot declare or read the ledger (a broker without streams,
  a catch-up that reads nothing for :data:`CATCH_UP_TIMEOUT` before its mark) does not consume
  setups: the session fails and is retried with back-off, and the error names the cause.

The same stream also carries the pool's ``claim`` and ``done`` entries for the setups Galaxy may
resend (:mod:`lwr.pool.resends`): one log, one subscription and one catch-up for both, and the
first claim of a uuid is the same for every reader because the log has one order.

Why not ask the other workers instead (a newcomer asking "which kills do you remember?" and
waiting for their answers before consuming): the newcomer cannot know how many answers to wait
for, and it misses every kill whose hearers have all gone (a pool scaled to zero and back, a
worker's disk lost with its instance), including the worker that took the kill from Galaxy. The
stream lives as long as the broker's own data, which the pool already relies on for its leases.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import kombu

from lwr.errors import KillLedgerUnavailable
from lwr.persistence.outbox import EARLY_KILL_MEMORY
from lwr.pool import protocol
from lwr.pool.resends import Resends

log = logging.getLogger(__name__)

#: the stream's name after the manager's queue prefix (``pulsar_<manager>_`` by default)
LEDGER_SUFFIX = "lwr_pool_kills"
#: bytes per stream segment: the broker drops whole segments once all their entries are older
#: than the window, so small segments keep the ledger close to the window (a kill is ~150 bytes)
SEGMENT_BYTES = 1_000_000
#: unacknowledged ledger entries in flight to one worker while it reads
PREFETCH = 500
#: seconds a catch-up may go without reading anything before the session fails (and is
#: retried); a long ledger is fine as long as it keeps coming (an empty one is read in
#: milliseconds, 20,000 kills in about 7 s on the loaded 2-core test machine)
CATCH_UP_TIMEOUT = 60.0


def ledger_name(prefix: str) -> str:
    """The ledger stream of the pool whose queues start with ``prefix``."""
    return f"{prefix}_{LEDGER_SUFFIX}"


def stream_arguments() -> dict[str, Any]:
    """The declaration every worker makes; identical everywhere, else the broker refuses it."""
    return {
        "x-queue-type": "stream",
        "x-max-age": f"{int(EARLY_KILL_MEMORY)}s",
        "x-stream-max-segment-size-bytes": SEGMENT_BYTES,
    }


class KillLedger:
    """One worker's view of one pool's ledger, for one broker session at a time.

    ``on_kills`` receives the kills read: once with the whole catch-up batch (possibly empty),
    then one list per live kill. It runs on the thread that drains the connection.
    """

    def __init__(
        self,
        prefix: str,
        worker_id: str,
        on_kills: Callable[[list[protocol.LedgerEntry]], None],
    ) -> None:
        self.name = ledger_name(prefix)
        self.worker_id = worker_id
        self.on_kills = on_kills
        self._writer: Any = None
        self._published = 0  # publishes on the writer channel: the broker's confirm numbers
        self._confirming: dict[int, Callable[[], None]] = {}  # what to do once confirmed
        self._token: str | None = None  # the mark this session waits for
        self._backlog: list[protocol.LedgerEntry] | None = None  # kills read during catch-up
        self._last_read = 0.0  # when the catch-up last read an entry (monotonic)
        #: the setups claimed on the same stream (``claim``/``done`` entries, lwr.pool.resends)
        self.resends = Resends(worker_id, self._write)

    def prepare(self, connection: kombu.Connection) -> None:
        """Declare the ledger and subscribe to it for this session, from the window's start.

        Called before the worker consumes anything, so that :meth:`record` always has its
        channel; what is read until :meth:`catch_up` ends is the catch-up batch.
        """
        self._published, self._confirming = 0, {}
        self._token, self._backlog = uuid.uuid4().hex, []
        self.resends.new_session()
        self._writer = connection.channel()
        self._writer.events["basic_ack"].add(self._on_confirm)
        self._writer.events["basic_nack"].add(self._on_refusal)
        self._writer.confirm_select()
        reader = connection.channel()
        reader.basic_qos(0, PREFETCH, False)
        since = datetime.fromtimestamp(time.time() - EARLY_KILL_MEMORY, tz=timezone.utc)
        queue = kombu.Queue(
            self.name,
            durable=True,
            queue_arguments=stream_arguments(),
            consumer_arguments={"x-stream-offset": since},
        )
        try:
            queue(reader).declare()
        except connection.channel_errors as exc:
            raise KillLedgerUnavailable(
                f"cannot declare the pool's kill ledger, the stream {self.name} ({exc}); pool "
                "workers need RabbitMQ 3.9 or later with streams (docs/elastic_workers.md)"
            ) from exc
        kombu.Consumer(
            reader,
            [queue],
            callbacks=[self._on_entry],
            accept=["json"],
            no_ack=False,
            on_decode_error=self._on_undecodable,
        ).consume()

    def catch_up(self, connection: kombu.Connection) -> None:
        """Read the ledger up to now: returns once every kill recorded before this call (within
        the window) was passed to ``on_kills``; later ones follow as they come.

        The mark needs no confirm: reading it back from the stream proves it is there, behind
        everything appended before it.
        """
        self._write(protocol.LedgerEntry("mark", self.worker_id, time.time(), token=self._token))
        self._last_read = time.monotonic()
        while self._token is not None:
            remaining = self._last_read + CATCH_UP_TIMEOUT - time.monotonic()
            if remaining <= 0:
                raise KillLedgerUnavailable(
                    f"the kill ledger {self.name}: nothing read for {CATCH_UP_TIMEOUT:.0f}s and "
                    "this worker's mark not back; not taking setups before every kill is read"
                )
            try:
                connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                pass
        backlog, self._backlog = self._backlog or [], None
        log.info(
            "kill ledger %s: caught up (%d kill(s) of the last %.0f h)",
            self.name,
            len(backlog),
            EARLY_KILL_MEMORY / 3600,
        )
        self.on_kills(backlog)

    def record(self, job_id: str, then: Callable[[], None]) -> None:
        """Append Galaxy's kill of ``job_id``; call ``then`` once the broker confirmed it.

        Asynchronous on purpose: the confirm arrives among the session's other events, so no
        handler ever waits inside another (py-amqp pairs a waiting publish with the next confirm
        of its channel, whichever publish that confirm is for). A refused entry fails the
        session, and ``then`` (which acknowledges Galaxy's kill) never runs.
        """
        self._write(protocol.LedgerEntry("kill", self.worker_id, time.time(), job_id=job_id))
        self._confirming[self._published] = then

    def _write(self, entry: protocol.LedgerEntry) -> None:
        message = self._writer.prepare_message(
            json.dumps(entry.to_body()),
            content_type="application/json",
            content_encoding="utf-8",
            properties={"delivery_mode": 2},
        )
        self._writer.basic_publish(message, exchange="", routing_key=self.name)
        self._published += 1

    def _on_confirm(self, tag: int, multiple: bool) -> None:
        done = sorted(t for t in self._confirming if t <= tag) if multiple else [tag]
        for number in done:
            then = self._confirming.pop(number, None)
            if then is not None:
                then()

    def _on_refusal(self, tag: int, multiple: bool) -> None:
        raise KillLedgerUnavailable(f"the broker refused to keep a kill in {self.name}")

    def _on_undecodable(self, message: Any, exc: Exception) -> None:
        message.ack()
        log.warning("kill ledger %s: ignoring an undecodable entry: %s", self.name, exc)

    def _on_entry(self, body: Any, message: Any) -> None:
        message.ack()  # a stream keeps its entries: the ack only lets the next ones come
        self._last_read = time.monotonic()
        try:
            entry = protocol.LedgerEntry.from_body(body)
        except Exception as exc:  # anything else on the stream is not ours to act on
            log.warning("kill ledger %s: ignoring an entry: %s", self.name, exc)
            return
        if entry.kind == "mark":
            if entry.token == self._token:
                self._token = None
            return
        if entry.at < time.time() - EARLY_KILL_MEMORY:
            return  # older than the window: forgotten, as the outbox forgets it
        if entry.kind in ("claim", "done"):
            self.resends.on_entry(entry)
            return
        if self._backlog is not None:
            self._backlog.append(entry)
        else:
            self.on_kills([entry])
