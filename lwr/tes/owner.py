"""Who a TES caller is, and which tasks they may see: the face's one ownership rule.

Every task records its owner when it is created; listing, reading and cancelling answer only
the caller's own tasks (another's task is a 404, so ids are not probed). The admin token is
named by a digest, never the token itself; a service user by name (``user:<name>``), and their
tasks live in their job namespace (lwr.managers.namespace) like their other jobs, so the same
lookups, limits, listings, retention and notifications apply to both.
"""

from __future__ import annotations

import hashlib

from webob import Request

ANONYMOUS = "anonymous"


def caller(request: Request, configured_token: str | None, user: str | None = None) -> str:
    """The owner name of the request's caller (already authorised by the dispatcher).

    ``user`` is the service user the dispatcher found for the token (lwr.service.users): their
    tasks are theirs by name, whichever of their tokens they use. The admin token (or an open
    server) is named by a digest as before.
    """
    from lwr.web.dispatch import supplied_token

    if user is not None:
        return f"{USER_PREFIX}{user}"
    if not configured_token:
        return ANONYMOUS
    token = supplied_token(request) or ""
    return "token:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


USER_PREFIX = "user:"


def user_of(owner: str) -> str | None:
    """The service user an owner label names (their job namespace), None for the admin token."""
    return owner[len(USER_PREFIX) :] if owner.startswith(USER_PREFIX) else None


def may_see(owner: object, who: str) -> bool:
    """Whether ``who`` may see a task owned by ``owner``."""
    return isinstance(owner, str) and owner == who
