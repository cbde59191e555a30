"""The plan limits of an upload, decided before any byte of it is stored.

Called by the upload route with the request's ``Content-Length`` (None for a chunked body): a
known size over the limit is refused at once; otherwise the returned budget is what the body
may bring, and the route stops reading, and drops the partial file, the moment it would pass it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from lwr.persistence.store import JobStore
from lwr.service.plans import UploadBudget, check_size
from lwr.service.users import Caller, Users


class _JobLocks:
    """One lock per job while uploads into it are in flight (none kept for idle jobs)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            lock, users = self._held.get(key, (threading.Lock(), 0))
            self._held[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._held[key]
                if users == 1:
                    del self._held[key]
                else:
                    self._held[key] = (lock, users - 1)


_JOBS = _JobLocks()


def serialised(caller: Caller, where: tuple[str, str]) -> AbstractContextManager[None]:
    """Hold while a user's upload into the job ``where`` is checked, written and recorded.

    So two uploads into one job at once cannot each pass ``max_total_input``. Only uploads into
    the same job wait for each other (a slow one never holds up another user's).
    """
    if caller.user is None:
        return nullcontext()  # the admin token has no plan: nothing to add up
    return _JOBS.hold(where)


def upload_budget(
    users: Users,
    store: JobStore,
    caller: Caller,
    where: tuple[str, str],
    upload: tuple[str, str],
    length: int | None,
) -> UploadBudget | None:
    """The budget of an upload ``(type, name)`` into the job ``where`` = ``(manager, job_id)``.

    None for the admin token (its own ``max_upload_size`` applies) and for unlimited plans.
    A file uploaded again under the same name replaces the earlier one, so the job's total is
    counted without it.
    """
    if caller.user is None:
        return None
    plan = users.plan_of(caller.user)
    if plan.max_input_size is None and plan.max_total_input is None:
        return None
    before = store.uploaded_total(where[0], where[1], upload)
    return check_size(users.plans, plan, before, length)
