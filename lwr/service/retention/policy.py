"""When a job's results stop being hot, and what an upgrade brings back: pure functions.

A deadline is fixed when a finished job is first seen (its plan then), so a later downgrade
never shortens it; an upgrade extends deadlines and restores what the new plan would still keep.
``None`` stands for "forever" throughout, as in :class:`~lwr.service.plans.Plan`.
"""

from __future__ import annotations


def hot_until(finished: float, retention_minutes: float | None) -> float | None:
    """The moment a job finished at ``finished`` is archived under a plan (None: never)."""
    if retention_minutes is None:
        return None
    return finished + retention_minutes * 60.0


def is_due(deadline: float | None, now: float) -> bool:
    """Whether results with this deadline should be archived at ``now``."""
    return deadline is not None and deadline <= now


def keeps_longer(old_minutes: float | None, new_minutes: float | None) -> bool:
    """Whether a plan change lengthens retention (the only change that touches old results)."""
    if new_minutes is None:
        return old_minutes is not None
    return old_minutes is not None and new_minutes > old_minutes


def later(current: float | None, candidate: float | None) -> float | None:
    """The later of two deadlines (None, forever, is the latest)."""
    if current is None or candidate is None:
        return None
    return max(current, candidate)


def restores(finished: float, new_minutes: float | None, now: float) -> bool:
    """Whether an archived job comes back under a plan keeping results ``new_minutes``."""
    return not is_due(hot_until(finished, new_minutes), now)
