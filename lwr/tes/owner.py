"""Who a TES caller is, and which tasks they may see: the face's one ownership rule.

Every task records its owner when it is created; listing, reading and cancelling answer only
the caller's own tasks (another's task is a 404, so ids are not probed). The caller is named by
the token that authorised the request — the same tokens as the rest of LWR (``private_token`` in
the query, or a Bearer header) — by a digest, never the token itself. Both functions are the
seam for per-user tokens: when a token maps to a user name, :func:`caller` returns that name.
"""

from __future__ import annotations

import hashlib

from webob import Request

ANONYMOUS = "anonymous"


def caller(request: Request, configured_token: str | None) -> str:
    """The owner name of the request's caller (already authorised by the dispatcher)."""
    from lwr.web.dispatch import supplied_token

    if not configured_token:
        return ANONYMOUS
    token = supplied_token(request) or ""
    return "token:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def may_see(owner: object, who: str) -> bool:
    """Whether ``who`` may see a task owned by ``owner``."""
    return isinstance(owner, str) and owner == who
