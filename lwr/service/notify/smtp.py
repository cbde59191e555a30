"""Email through an SMTP relay (``smtp_*`` options), with the job, its state and its page's link.

:mod:`smtplib` from the standard library speaks everything needed (plain, STARTTLS, implicit TLS,
AUTH); the message's ``Message-ID`` is the notification's id, so a receiving system that sees
the same mail twice (the at-least-once window, see docs/service.md) can tell.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from lwr.service.notify.outbox import Notification
from lwr.service.notify.settings import SmtpConfig


def message(item: Notification, sender: str) -> EmailMessage:
    """The mail telling ``item``'s owner that their job ended."""
    job = item.body
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = item.target
    mail["Subject"] = f"LWR job {job['id']} {job['state']}"
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{item.id}@lwr>"
    mail["X-LWR-Delivery"] = item.id
    lines = [
        f"Your job {job['id']} (manager {job['manager']}) has ended: {job['state']}.",
        "",
        f"Return code: {job.get('return_code')}",
    ]
    if job.get("reason"):
        lines.append(f"Reason: {job['reason']}")
    if job.get("url"):
        lines += ["", f"Details: {job['url']}"]
    mail.set_content("\n".join(lines) + "\n")
    return mail


def send(config: SmtpConfig, item: Notification) -> None:
    """Hand the mail to the relay; raises OSError/smtplib.SMTPException when it is not taken."""
    if config.host is None:
        raise smtplib.SMTPException("no smtp_host configured")
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    client: smtplib.SMTP
    if config.tls == "ssl":
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    with client:
        if config.tls == "starttls":
            client.starttls(context=context)
        if config.username:
            client.login(config.username, config.password or "")
        client.send_message(message(item, config.sender))
