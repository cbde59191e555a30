"""What the web layer asks of retention: may this download be served, what a listing shows."""

from __future__ import annotations

import time

from lwr.errors import LwrError, NotFoundError, ResultsArchivedError
from lwr.managers.directory import OUTPUT_TYPES, split_name
from lwr.persistence.store import JobRecord
from lwr.service.plans import Plan, Plans
from lwr.service.retention import policy
from lwr.service.retention.archive import ARCHIVED
from lwr.service.retention.table import Kept, RetentionTable
from lwr.service.users import Users


def current(table: RetentionTable, record: JobRecord) -> Kept | None:
    """The row of this very job attempt (a row of an earlier attempt does not count)."""
    kept = table.get(record.manager, record.job_id)
    return kept if kept is not None and kept.seq == record.seq else None


def check_download(
    table: RetentionTable, users: Users, record: JobRecord, file_type: str, name: str
) -> None:
    """Refuse (409, :class:`ResultsArchivedError`) a download of results that are archived."""
    if record.owner is None or not reads_archived(file_type, name):
        return
    kept = current(table, record)
    if kept is None or not kept.archived:
        return
    try:
        plan = users.plan_of(users.get(record.owner))
    except NotFoundError:
        plan = users.plans.get(users.plans.default)
    raise ResultsArchivedError(
        name, plan.name, kept.restoring, upgrade_to(users.plans, plan, kept.finished, time.time())
    )


def reads_archived(file_type: str, name: str) -> bool:
    """Whether a download of ``type``/``name`` reads from a directory that archives hold."""
    sub = OUTPUT_TYPES.get(file_type)
    if sub is None:
        return False  # not a download type: the directory's own check refuses it
    if sub:
        return sub in ARCHIVED
    try:
        parts = split_name(name)
    except LwrError:
        return False
    return bool(parts) and parts[0] in ARCHIVED


def upgrade_to(plans: Plans, plan: Plan, finished: float, now: float) -> list[str]:
    """The plans (in upgrade order) a move to would restore a job that finished then."""
    return [
        other.name
        for other in plans.plans
        if policy.keeps_longer(plan.retention_minutes, other.retention_minutes)
        and policy.restores(finished, other.retention_minutes, now)
    ]
