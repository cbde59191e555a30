"""The admin token's user routes (``/users``…) and the plan list; lwr.service.users does the work.

The same operations as ``lwr users …`` on the command line; a new user's token is in the answer
to ``POST /users`` and nowhere else, ever.
"""

from __future__ import annotations

from typing import Any

from lwr.web.request import Context


def plans(ctx: Context) -> dict[str, Any]:
    """Every plan with its limits, and the caller's own plan when the caller is a user."""
    users = ctx.app.users
    answer: dict[str, Any] = {
        "plans": [plan.as_dict() for plan in users.plans.plans],
        "default": users.plans.default,
    }
    if ctx.caller.user is not None:
        answer["current"] = users.plan_of(ctx.caller.user).name
    return answer


def list_users(ctx: Context) -> dict[str, Any]:
    return {"users": [user.as_dict() for user in ctx.app.users.all()]}


def add(ctx: Context) -> dict[str, Any]:
    user, token = ctx.app.users.add(ctx.required("name"), ctx.param("plan"))
    return {"user": user.as_dict(), "token": token}


def show(ctx: Context) -> dict[str, Any]:
    users = ctx.app.users
    user = users.get(ctx.args["name"])
    return {"user": user.as_dict(), "limits": users.plan_of(user).as_dict()}


def set_plan(ctx: Context) -> dict[str, Any]:
    user = ctx.app.users.set_plan(ctx.args["name"], ctx.required("plan"))
    return {"user": user.as_dict()}


def revoke(ctx: Context) -> dict[str, Any]:
    return {"user": ctx.app.users.revoke(ctx.args["name"]).as_dict()}
