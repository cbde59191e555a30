"""Webhooks: an HTTP POST of the job's status JSON, signed with HMAC-SHA256.

The signature covers ``<timestamp>.<body>`` with the user's webhook secret and travels as
``X-LWR-Signature: sha256=<hex>`` beside ``X-LWR-Timestamp`` (Unix seconds): a receiver
recomputes it over the exact bytes it received and refuses an old timestamp, so a captured
request cannot be replayed later. ``X-LWR-Delivery`` is the same on every retry of one
notification: the receiver's key to drop a repeat. Python's :mod:`urllib.request` is enough for
one POST; no HTTP client library is added for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from lwr.service.notify.outbox import Notification

SIGNATURE_HEADER = "X-LWR-Signature"
TIMESTAMP_HEADER = "X-LWR-Timestamp"
DELIVERY_HEADER = "X-LWR-Delivery"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: urllib would follow 301-303 as a GET without
    the body (and the signature), so every 3xx is a failed try instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class WebhookError(Exception):
    """The receiver did not take the notification (connection error or a non-2xx answer)."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-LWR-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, supplied: str, max_age: float = 300) -> bool:
    """What a receiver does (documented, and used by the tests' receiver)."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= max_age
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), supplied)


def send(item: Notification, timeout: float) -> None:
    """POST ``item``'s body to its URL; raises WebhookError unless the answer is 2xx."""
    body = json.dumps(item.body, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(item.target, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "LWR-notify")
    request.add_header(TIMESTAMP_HEADER, timestamp)
    request.add_header(SIGNATURE_HEADER, signature(item.secret or "", timestamp, body))
    request.add_header(DELIVERY_HEADER, item.id)
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"HTTP {exc.code} from {item.target}") from None
    except (OSError, ValueError) as exc:
        raise WebhookError(f"{item.target}: {exc}") from None
    if not 200 <= status < 300:
        raise WebhookError(f"HTTP {status} from {item.target}")
