"""A user's notification channels as the admin sees them (``lwr users show``).

The admin wants to know what will actually happen, not only what was typed: an address is only
mailed by a server with ``smtp_host``, and a webhook URL the egress policy now refuses (its name
moved to an internal address, or the allowed networks changed) is never posted to. So each
channel says whether it is enabled and why not, with the outcome of recent deliveries. The
webhook secret is masked: the admin sees that there is one, and at most its last characters.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, TextIO

from lwr.errors import InvalidRequestError
from lwr.service.notify.outbox import NotifyStore
from lwr.service.notify.settings import NotifyConfig

#: a secret shorter than this is shown as stars only (its tail would be most of it)
_REVEAL_FROM = 24


def mask(secret: str | None) -> str | None:
    """``****`` and, for a long (generated) secret, its last four characters."""
    if not secret:
        return None
    return "****" + (secret[-4:] if len(secret) >= _REVEAL_FROM else "")


def channels_report(store: NotifyStore, config: NotifyConfig, owner: str) -> dict[str, Any]:
    """``owner``'s channels, whether each is enabled (and why not), and their deliveries."""
    channels = store.channels(owner)
    email_note = None
    if channels.email is None:
        email_note = "not set"
    elif config.smtp.host is None:
        email_note = "this server has no smtp_host"
    webhook_note = None
    if channels.webhook_url is None:
        webhook_note = "not set"
    else:
        try:
            store.egress.check_url(channels.webhook_url)
        except InvalidRequestError as exc:
            webhook_note = str(exc)
    failure = store.last_failure(owner)
    return {
        "email": {"address": channels.email, "enabled": email_note is None, "note": email_note},
        "webhook": {
            "url": channels.webhook_url,
            "secret": mask(channels.webhook_secret),
            "enabled": webhook_note is None,
            "note": webhook_note,
        },
        "deliveries": store.counts(owner),
        "last_failure": None
        if failure is None
        else {
            "channel": failure[0].channel,
            "job": failure[0].body.get("id"),
            "when": _utc(failure[1]),
            "error": failure[0].last_error,
        },
    }


def print_channels(report: dict[str, Any], out: TextIO) -> None:
    """The report as ``lwr users show`` prints it, one line a channel."""
    email, webhook = report["email"], report["webhook"]
    print(f"  email: {email['address'] or '-'} ({_state(email)})", file=out)
    secret = f", secret {webhook['secret']}" if webhook["secret"] else ""
    print(f"  webhook: {webhook['url'] or '-'} ({_state(webhook)}{secret})", file=out)
    counts = report["deliveries"]
    print(
        f"  deliveries: {counts['pending']} pending, {counts['sent']} sent, "
        f"{counts['failed']} failed",
        file=out,
    )
    failure = report["last_failure"]
    if failure is not None:
        print(
            f"  last failure: {failure['channel']} for job {failure['job']} at "
            f"{failure['when']}: {failure['error']}",
            file=out,
        )


def _state(channel: dict[str, Any]) -> str:
    return "enabled" if channel["enabled"] else f"disabled: {channel['note']}"


def _utc(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
