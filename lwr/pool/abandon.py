"""How a pool worker gives jobs up: the broker took their setups back, or will.

Split from :mod:`lwr.pool.worker` to keep each module readable; :class:`GivingUp` is only ever a
base of :class:`~lwr.pool.worker.PoolConsumer`, whose attributes it declares below. A job given
up is stopped here and forgotten (record, directory, announcement) without a word to Galaxy: its
setup is, or is about to be, another worker's to run.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from lwr.managers.base import FINAL_STATES, JobState
from lwr.pool.leases import Lease, LeaseTable

if TYPE_CHECKING:
    from lwr.managers.stateful import StatefulManager
    from lwr.persistence.outbox import Outbox
    from lwr.pool.kill_ledger import KillLedger
    from lwr.pool.wakeup import Waker

log = logging.getLogger(__name__)


class GivingUp:
    """Abandoning leases and the jobs of an earlier life; see the module docstring."""

    manager: StatefulManager
    outbox: Outbox
    leases: LeaseTable
    waker: Waker
    ledger: KillLedger
    _channel: Any
    _hub_gone: threading.Event

    def forget_unowned(self) -> int:
        """Give up the jobs of an earlier life: unfinished, or finished but never announced.

        Their setups went back to the broker when that life's connection closed, so another
        worker (or this one, later) runs them; what is left here must neither run on nor be
        reported. Returns how many were given up.
        """
        told = self.outbox.announcements(self.manager.name)
        given_up = 0
        for record in self.manager.store.in_states(self.manager.name, list(JobState)):
            if record.state in FINAL_STATES and told.get(record.job_id) == (
                record.attempt,
                record.state.value,
            ):
                continue
            log.warning(
                "job %s/%s: %s in an earlier life of this worker and not announced; giving it "
                "up (the broker hands its setup to the pool again)",
                self.manager.name,
                record.job_id,
                record.state.value,
            )
            self._discard(record.job_id)
            given_up += 1
        return given_up

    def _hand_back(self, why: str = "the drain timeout passed") -> None:
        """Stop the held jobs here and return their setups to the queue (drain timeout)."""
        for lease in self.leases.held():
            self._abandon(lease, why)
            for delivery in lease.deliveries:
                self._channel.basic_reject(delivery.delivery_tag, requeue=True)
        self._channel.tx_commit()

    def on_hub_lost(self) -> None:
        """The worker's supervisor hub died, and every job it ran died with it (any thread).

        Their runs were cut short: none may be reported, all are given back (the consumer
        thread does it, :meth:`_hub_check`). The hub's client calls this once those jobs have
        ended and before it fails any start request waiting for the dead hub, so a start that
        fails for that reason finds the flag set.
        """
        self._hub_gone.set()
        self.waker.wake()

    def _hub_check(self) -> bool:
        """On the consumer thread, after taking the updates to send and before sending them:
        whether the hub died, in which case every held job was just given back.

        An update taken before the flag was set cannot come from the hub's death (a job of a
        lost hub never shows as ended; a start refused for it is refused after the flag). Once
        set, everything held is given back, the updates just taken included (their leases end
        here, so nothing of theirs is ever sent).
        """
        if not self._hub_gone.is_set():
            return False
        self._hub_gone.clear()
        self._hand_back("the worker's job supervisor hub died, and the job with it")
        return True

    def _give_up_all(self, why: str) -> None:
        for lease in self.leases.held():
            self._abandon(lease, why)

    def _abandon(self, lease: Lease, why: str) -> None:
        if self.leases.release(lease, finished=False):
            self.ledger.resends.given_up(lease.job_id)
            log.warning(
                "job %s/%s: given back to the pool (%s); stopping it here",
                self.manager.name,
                lease.job_id,
                why,
            )
            self._discard(lease.job_id)

    def _discard(self, job_id: str) -> None:
        """Stop the job and forget it here, announcement included; nothing is reported."""
        try:
            self.outbox.forget_announced(self.manager.name, [job_id])
            if self.manager.find(job_id) is not None:
                self.manager.clean(job_id)
        except Exception:
            log.exception("job %s/%s: stopping an abandoned job failed", self.manager.name, job_id)
