"""``GET/PUT /profile/notifications``: a service user's own notification channels.

Parameters travel in the query string like every other route's (the access log redacts them);
lwr.service.notify.outbox validates and stores them.
"""

from __future__ import annotations

from typing import Any

from lwr.errors import InvalidRequestError
from lwr.web.request import Context

_SETTINGS = ("email", "webhook_url", "webhook_secret")


def _owner(ctx: Context) -> str:
    user = ctx.caller.user
    if user is None:
        raise InvalidRequestError(
            "the admin token has no notifications; set a user's with `lwr users set-notify`"
        )
    return user.name


def show(ctx: Context) -> dict[str, Any]:
    return {"notifications": ctx.app.notify.channels(_owner(ctx)).as_dict()}


def update(ctx: Context) -> dict[str, Any]:
    """Change the channels given ('' turns one off); a generated webhook secret is shown once."""
    owner = _owner(ctx)
    changes = {name: ctx.param(name) for name in _SETTINGS if ctx.param(name) is not None}
    if not changes:
        raise InvalidRequestError(f"give at least one of {', '.join(_SETTINGS)}")
    if changes.get("email") and ctx.app.config.notify.smtp.host is None:
        raise InvalidRequestError("this server sends no email (no smtp_host configured)")
    channels, generated = ctx.app.notify.set_channels(owner, changes)
    answer: dict[str, Any] = {"notifications": channels.as_dict()}
    if generated is not None:
        answer["webhook_secret"] = generated
    return answer
