"""What the database says should happen: deadlines reached and the restores an upgrade asks
for (new rows for newly finished jobs, and rows whose job is gone: :mod:`.intake`).

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
from lwr.service.retention.table import R_COLUMNS, Kept, RetentionTable
from lwr.service.store import User
from lwr.service.users import Users

log = logging.getLogger(__name__)


class Planner:
    """Decisions over the ``retention`` table; see the module docstring."""

    def __init__(self, table: RetentionTable, users: Users) -> None:
        self.table = table
        self.users = users

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
        configuration) or a row that moved under the listener's guarded update. One query per
        plan, driven by its users and the index ``(owner, status, finished)``, so it reads
        only archived rows the plan would keep (finished within its minutes; all for a plan
        keeping results forever), never every archived row.
        """
        plans = self.users.plans
        names = [plan.name for plan in plans.plans]
        queued = 0
        for plan in plans.plans:
            minutes = plan.retention_minutes
            # a user on a plan the configuration no longer has is on the default plan
            on_plan, params = "u.plan=?", [plan.name]
            if plan.name == plans.default:
                on_plan = f"(u.plan=? OR u.plan NOT IN ({','.join('?' * len(names))}))"
                params.extend(names)
            cutoff = -1.0 if minutes is None else now - minutes * 60.0
            rows = self.table.db.fetchall(
                # CROSS JOIN: SQLite keeps this order (users, then each one's index range)
                f"SELECT {R_COLUMNS} FROM service_users u CROSS JOIN retention r "
                f"WHERE r.owner=u.name AND {on_plan} AND r.status=? "
                "AND (r.task IS NULL OR r.task=?) AND r.finished>?",
                (*params, states.ARCHIVED, states.PURGE, cutoff),
            )
            for kept in (Kept(*row) for row in rows):
                if not policy.restores(kept.finished, minutes, now):
                    continue  # the edge of the cutoff, in floating point
                if self.table.advance(
                    kept,
                    kept.task,
                    hot_until=policy.hot_until(kept.finished, minutes),
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

    def retention_of(self, owner: str) -> float | None:
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
