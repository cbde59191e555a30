"""``GET /jobs``: the caller's jobs, newest first (lwr.service.listing does the work)."""

from __future__ import annotations

from typing import Any

from lwr.service import listing
from lwr.web.request import Context


def jobs(ctx: Context) -> dict[str, Any]:
    """At the root every manager's jobs; under ``/managers/{name}/`` that manager's only."""
    manager = ctx.args.get("manager")
    if manager is not None:
        ctx.app.manager(manager)  # 404 for an unknown manager
    query = listing.query_for(
        ctx.caller,
        manager,
        states=ctx.param("state"),
        limit=ctx.param("limit"),
        page_token=ctx.param("page_token"),
        owner=ctx.param("owner"),
    )
    return listing.list_jobs(
        ctx.app.store, query, show_owner=ctx.caller.is_admin, retention=ctx.app.retention.table
    )
