"""``lwr users add|list|show|set-plan|revoke|set-notify``: the admin's commands, on its database.

They read the server's own configuration (``--config``, default ``server.ini``) to find the job
store's database and the plans, and change it directly: a running server looks users up on every
request, so a change applies at once, without a restart. ``add`` prints the new token once; only
its digest is stored, so a lost token is replaced by revoking the user and adding another.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from lwr.service.notify.outbox import NotifyStore
from lwr.service.notify.settings import NotifyConfig
from lwr.service.notify.show import channels_report, print_channels
from lwr.service.store import User
from lwr.service.users import Users


def register(commands: Any) -> None:
    """Add ``users`` to ``lwr``'s sub-commands."""
    parser = commands.add_parser("users", help="manage the shared service's users and plans")
    parser.add_argument("--config", default="server.ini", help="the server's server.ini/app.yml")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a user and print its token (once)")
    add.add_argument("name")
    add.add_argument("--plan", help="the user's plan (default: default_plan)")
    actions.add_parser("list", help="every user with their plan")
    for action, what in (
        ("show", "a user, their plan's limits and their notification channels"),
        ("revoke", "refuse the user's token from now on"),
    ):
        actions.add_parser(action, help=what).add_argument("name")
    set_plan = actions.add_parser("set-plan", help="move a user to another plan")
    set_plan.add_argument("name")
    set_plan.add_argument("plan")
    _register_notify(actions)
    parser.set_defaults(func=main)


def _register_notify(actions: Any) -> None:
    """``set-notify NAME [--email A] [--webhook-url U] [--webhook-secret S]`` ('' turns off)."""
    notify = actions.add_parser("set-notify", help="set a user's notification channels")
    notify.add_argument("name")
    for option in ("--email", "--webhook-url", "--webhook-secret"):
        notify.add_argument(option, help="'' turns it off; left out: unchanged")


def open_users(config_path: str) -> tuple[Users, NotifyConfig]:
    """The users of the server configured by ``config_path``, and its notification options."""
    from lwr import serve
    from lwr.persistence.store import JobStore
    from lwr.service.retention.planning import Planner
    from lwr.service.retention.table import RetentionTable

    config = serve.app_config(serve.find_layout(Path(config_path)))
    store = JobStore(config.persistence_directory, config.database_url)
    users = Users(store, config.plans, config.private_token)
    # an upgrade queues its restores in the database; the server's retention worker runs them
    users.plan_listeners.append(Planner(RetentionTable(store.db), users).plan_changed)
    return users, config.notify


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up now, not at import (a test may have replaced it)
    users, notify = open_users(args.config)
    try:
        answer = _run(users, notify, args)
    finally:
        users.rows.db.close()
    if args.json:
        print(json.dumps(answer, indent=2), file=out)
    else:
        _print(answer, out)
    return 0


def _run(users: Users, notify: NotifyConfig, args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "add":
        user, token = users.add(args.name, args.plan)
        return {"user": user.as_dict(), "token": token}
    if args.action == "list":
        return {"users": [user.as_dict() for user in users.all()]}
    if args.action == "show":
        user = users.get(args.name)
        return {
            "user": user.as_dict(),
            "limits": users.plan_of(user).as_dict(),
            "channels": channels_report(_notify_store(users, notify), notify, user.name),
        }
    if args.action == "set-plan":
        return {"user": users.set_plan(args.name, args.plan).as_dict()}
    if args.action == "set-notify":
        return _set_notify(users, notify, args)
    return {"user": users.revoke(args.name).as_dict()}


def _notify_store(users: Users, notify: NotifyConfig) -> NotifyStore:
    """The server's notification tables, with its egress policy (a URL it would refuse is
    refused here too: the sender would never deliver to it)."""
    return NotifyStore(users.rows.db, notify.public_url, egress=notify.egress())


def _set_notify(users: Users, notify: NotifyConfig, args: argparse.Namespace) -> dict[str, Any]:
    user = users.get(args.name)
    settings = {
        "email": args.email,
        "webhook_url": args.webhook_url,
        "webhook_secret": args.webhook_secret,
    }
    changes = {key: value for key, value in settings.items() if value is not None}
    channels, generated = _notify_store(users, notify).set_channels(user.name, changes)
    answer: dict[str, Any] = {"user": user.as_dict(), "notifications": channels.as_dict()}
    if generated is not None:
        answer["webhook_secret"] = generated
    return answer


def _print(answer: dict[str, Any], out: TextIO) -> None:
    for user in answer.get("users", [answer.get("user")]):
        if user is not None:
            print(
                _line(User(user["name"], user["plan"], user["created"], 0, user["revoked"])),
                file=out,
            )
    for key, value in answer.get("limits", {}).items():
        if key != "name":
            unset = "forever" if key == "retention_minutes" else "unlimited"
            print(f"  {key}: {unset if value is None else value}", file=out)
    for key, value in answer.get("notifications", {}).items():
        print(f"  {key}: {value}", file=out)
    if "channels" in answer:
        print_channels(answer["channels"], out)
    if "webhook_secret" in answer:
        print(f"webhook secret: {answer['webhook_secret']}", file=out)
    if "token" in answer:
        print(f"token: {answer['token']}", file=out)
        print("(shown this once; only its digest is stored)", file=out)


def _line(user: User) -> str:
    return f"{user.name}\tplan {user.plan}\t{'active' if user.active else 'revoked'}"
