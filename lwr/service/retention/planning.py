"""What the database says should happen: new rows for newly finished jobs, deadlines reached,
rows whose job is gone, and the restores an upgrade asks for.

Everything here only writes ``retention`` rows (the durable queue), never files, so it can run
in any process that has the database: the server's worker, and ``lwr users set-plan`` (whose
plan listener queues the restores that the server's worker then performs).
"""

from __future__ import annotations

import logging
import time

from lwr.errors import NotFoundError
from lwr.service.plans import Plan
from lwr.service.retention import policy
from lwr.service.retention import table as states
from lwr.service.retention.table import Kept, RetentionTable
from lwr.service.store import User
from lwr.service.users import Users

log = logging.getLogger(__name__)

#: finished jobs of service users that have no row yet (or a row of an earlier attempt)
_UNSEEN = (
    "SELECT j.manager, j.job_id, j.seq, j.owner, j.finished FROM jobs j "
    "LEFT JOIN retention r ON r.manager=j.manager AND r.job_id=j.job_id AND r.seq=j.seq "
    "WHERE j.owner<>'' AND j.finished IS NOT NULL AND r.job_id IS NULL LIMIT ?"
)
#: rows whose job attempt no longer exists (cleaned, expired, or set up again)
_STALE = (
    "SELECT r.manager, r.job_id, r.seq FROM retention r "
    "LEFT JOIN jobs j ON r.manager=j.manager AND r.job_id=j.job_id AND r.seq=j.seq "
    "WHERE j.job_id IS NULL LIMIT ?"
)


class Planner:
    """Decisions over the ``retention`` table; see the module docstring."""

    def __init__(self, table: RetentionTable, users: Users) -> None:
        self.table = table
        self.users = users

    def stale(self, limit: int = 100) -> list[Kept]:
        rows = self.table.db.fetchall(_STALE, (limit,))
        found = [self.table.get(manager, job_id) for manager, job_id, _seq in rows]
        stale_seqs = {(m, j, s) for m, j, s in rows}
        return [k for k in found if k is not None and (k.manager, k.job_id, k.seq) in stale_seqs]

    def adopt(self, now: float, limit: int = 200) -> int:
        """Give each newly finished job of a user its row and its deadline (the plan's now)."""
        rows = self.table.db.fetchall(_UNSEEN, (limit,))
        if not rows:
            return 0
        with self.table.db.transaction() as tx:
            for manager, job_id, seq, owner, finished in rows:
                deadline = policy.hot_until(finished, self._retention(owner))
                tx.execute(
                    "DELETE FROM retention WHERE manager=? AND job_id=? AND seq<>? "
                    "AND status=? AND task IS NULL",
                    (manager, job_id, seq, states.HOT),
                )
                self.table.adopt(
                    tx, Kept(manager, job_id, seq, owner, finished, deadline, updated=now)
                )
        return len(rows)

    def queue_due(self, now: float) -> int:
        """Queue an archive for every hot row past its deadline."""
        queued = 0
        for kept in self.table.due(now):
            if self.table.advance(kept, None, task=states.ARCHIVE, attempts=0, error=None):
                queued += 1
                log.info("retention: job %s/%s due for archiving", kept.manager, kept.job_id)
        return queued

    def reconcile(self, now: float) -> int:
        """Queue a restore for archived results their owner's plan keeps now.

        The plan listener does this at once; this pass catches what it could not see: a plan
        changed behind the server's back (the database, a longer ``retention_minutes`` in the
        configuration) or a row that moved under the listener's guarded update.
        """
        owners = self.table.db.fetchall(
            "SELECT DISTINCT owner FROM retention WHERE status=? AND (task IS NULL OR task=?)",
            (states.ARCHIVED, states.PURGE),
        )
        queued = 0
        for (owner,) in owners:
            minutes = self._retention(owner)
            for kept in self.table.of_owner(owner):
                if _upgrade(kept) != states.RESTORE or not policy.restores(
                    kept.finished, minutes, now
                ):
                    continue
                deadline = policy.hot_until(kept.finished, minutes)
                if self.table.advance(
                    kept,
                    kept.task,
                    hot_until=deadline,
                    task=states.RESTORE,
                    attempts=0,
                    error=None,
                ):
                    queued += 1
        return queued

    def plan_changed(self, user: User, old: Plan, new: Plan) -> None:
        """The plan listener: a plan keeping results longer extends deadlines and restores."""
        if not policy.keeps_longer(old.retention_minutes, new.retention_minutes):
            return  # a downgrade (or no change) leaves every existing result as it is
        now = time.time()
        restoring = 0
        with self.table.db.transaction() as tx:
            for kept in self.table.of_owner(user.name):
                if not policy.restores(kept.finished, new.retention_minutes, now):
                    continue
                deadline = policy.later(
                    kept.hot_until, policy.hot_until(kept.finished, new.retention_minutes)
                )
                change = _upgrade(kept)
                if change is None:
                    self.table.advance_in(tx, kept, kept.task, hot_until=deadline)
                    continue
                self.table.advance_in(
                    tx, kept, kept.task, hot_until=deadline, task=change, attempts=0, error=None
                )
                restoring += change == states.RESTORE
        log.info(
            "retention: user %s moved to plan %s; %d archived job(s) to restore",
            user.name,
            new.name,
            restoring,
        )

    def _retention(self, owner: str) -> float | None:
        try:
            return self.users.plan_of(self.users.get(owner)).retention_minutes
        except NotFoundError:
            return self.users.plans.get(self.users.plans.default).retention_minutes


def _upgrade(kept: Kept) -> str | None:
    """The task a job's row gets when its results are to be kept again (None: keep its task)."""
    if kept.status == states.ARCHIVED and kept.task in (None, states.PURGE):
        return states.RESTORE  # the restore replaces whatever a half-done purge left
    if kept.status == states.HOT and kept.task == states.ARCHIVE:
        return states.FORGET  # the archive under way is dropped (its key is deleted if written)
    return None
