"""The pool's memory of the setups it took, so that Galaxy's resend of one is never run again.

Why it exists. Galaxy's client with ``amqp_acknowledge`` publishes a setup again (same
``acknowledge_uuid``, plus ``force_noack``) every ``amqp_ack_republish_time`` seconds until an
acknowledgement reply reaches it. In a pool every copy lands in the one ``setup`` queue that all
workers compete for: a setup that waits in a backlog longer than the republish time is there
several times, and each copy reaches whichever worker has room. A plain LWR remembers handled
uuids in its outbox; a pool worker's outbox only knows what that worker took, and a worker
started later (or restarted on a fresh disk) knows nothing. Without a shared memory, each copy
taken by another worker, or after the job finished, runs the job again and sends a second final
status.

What it is. Claims on the pool's kill ledger (:mod:`lwr.pool.kill_ledger`), the stream every
worker already reads from the memory window's start before it takes setups. A worker given a
setup with an ``acknowledge_uuid`` it has not read yet appends a ``claim`` entry (job id, uuid, a
token of its own) and keeps the delivery unanswered until it reads that claim back. The stream is
one log in one order: every worker reading it sees the same *first* claim of a uuid, and a claim
read back proves every entry appended before it has been read too (as with the catch-up mark).

* the first claim of a uuid wins: that worker runs the job (the delivery is its lease, as for any
  setup) and only then answers Galaxy's acknowledgement request, so a uuid Galaxy stops resending
  is always in the ledger;
* any later copy, a fresh publish by the client, is answered and acknowledged without running:
  the delivery that won is held by its worker, back in the queue if that worker died (the broker
  redelivers it), or finished;
* a *redelivered* copy of a claimed uuid runs unless a ``done`` entry (appended after the final
  status of the uuid's job was committed) says the job ended: it is the winning delivery coming
  back from a worker that died holding it, which the lease exists to run again.

A uuid already read needs no round trip: claims are never withdrawn. Setups without an
``acknowledge_uuid`` (Galaxy without ``amqp_acknowledge``) are never resent and are not claimed.
What is not covered (docs/elastic_workers.md): a copy *redelivered* because the worker given it
died during its own claim's round trip, while the winner still holds the job, runs again; a
``done`` lost to a crash between the final's commit and the entry has the same effect on a
redelivered copy after the job ended. Both need a crash within milliseconds of a resend.
"""

from __future__ import annotations

import logging
import os
import time
import uuid as uuids
from collections.abc import Callable
from typing import Any

from lwr.persistence.outbox import EARLY_KILL_MEMORY
from lwr.pool import protocol

log = logging.getLogger(__name__)

#: inserts between two sweeps of claims older than the memory window
SWEEP_EVERY = 1000
#: a test-only pause (seconds) before each claim is written, inert unless set: it widens the
#: window in which two workers claim the same uuid, so a test can make them race for sure
DELAY_ENV = "LWR_POOL_TEST_CLAIM_DELAY"


class Resends:
    """One worker's reading of the pool's claims; every method runs on the consumer thread.

    ``write`` appends an entry to the ledger (the ledger's writer channel).
    """

    def __init__(self, worker_id: str, write: Callable[[protocol.LedgerEntry], None]) -> None:
        self.worker_id = worker_id
        self._write = write
        self._first: dict[str, tuple[str, float]] = {}  # uuid -> (first claim's token, its time)
        self._done: set[str] = set()
        self._waiting: dict[str, Callable[[bool], None]] = {}  # own claim token -> its sequel
        self._started: dict[str, set[str]] = {}  # job id -> uuids of setups started for it
        self._inserts = 0
        self._delay = float(os.environ.get(DELAY_ENV) or 0)
        #: (job id, delivery) of copies to acknowledge without running (the worker's _flush)
        self.copies: list[tuple[str, Any]] = []

    def new_session(self) -> None:
        """Forget the claims and copies of the last session: its deliveries went back with it."""
        self._waiting, self.copies = {}, []

    def known(self, uuid: str) -> bool:
        """Whether a claim of ``uuid`` was read (the job was set up by some worker)."""
        return uuid in self._first

    def ended(self, uuid: str) -> bool:
        """Whether the final status of the job started under ``uuid`` was committed."""
        return uuid in self._done

    def claim(self, job_id: str, uuid: str, then: Callable[[bool], None]) -> None:
        """Append a claim of ``uuid``; once it is read back, ``then(won)``: whether it was first."""
        token = uuids.uuid4().hex
        self._waiting[token] = then
        if self._delay:
            time.sleep(self._delay)
        entry = protocol.LedgerEntry(
            "claim", self.worker_id, time.time(), job_id=job_id, token=token, uuid=uuid
        )
        self._write(entry)

    def started(self, job_id: str, uuid: str) -> None:
        """Note that a setup carrying ``uuid`` started ``job_id`` here (see :meth:`finished`)."""
        self._started.setdefault(job_id, set()).add(uuid)

    def finished(self, job_id: str) -> None:
        """The final status of ``job_id`` is committed: say so for each uuid that started it.

        Not confirmed: a ``done`` lost with this worker only matters to a copy redelivered later.
        """
        for uuid in sorted(self._started.pop(job_id, ())):
            self._write(protocol.LedgerEntry("done", self.worker_id, time.time(), uuid=uuid))

    def given_up(self, job_id: str) -> None:
        """This worker no longer holds ``job_id`` without a final: its setup runs elsewhere."""
        self._started.pop(job_id, None)

    def on_entry(self, entry: protocol.LedgerEntry) -> None:
        """A ``claim`` or ``done`` read from the ledger (any worker's, this one's included)."""
        assert entry.uuid is not None
        if entry.kind == "done":
            self._done.add(entry.uuid)
            return
        assert entry.token is not None
        if entry.uuid not in self._first:
            self._first[entry.uuid] = (entry.token, entry.at)
            self._inserts += 1
            if self._inserts % SWEEP_EVERY == 0:
                self._sweep()
        then = self._waiting.pop(entry.token, None)
        if then is not None:
            then(self._first[entry.uuid][0] == entry.token)

    def _sweep(self) -> None:
        """Forget claims older than the window (the broker drops them from the stream too)."""
        horizon = time.time() - EARLY_KILL_MEMORY
        old = [uuid for uuid, (_, at) in self._first.items() if at < horizon]
        for uuid in old:
            del self._first[uuid]
            self._done.discard(uuid)
