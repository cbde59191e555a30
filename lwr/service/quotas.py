"""The plan limits of an upload, decided before any byte of it is stored.

Called by the upload route with the request's ``Content-Length`` (None for a chunked body): a
known size over the limit is refused at once; otherwise the returned budget is what the body
may bring, and the route stops reading, and drops the partial file, the moment it would pass it.
"""

from __future__ import annotations

from lwr.persistence.store import JobStore
from lwr.service.plans import UploadBudget, check_size
from lwr.service.users import Caller, Users


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
