"""Webhooks: an HTTP POST of the job's status JSON, signed with HMAC-SHA256.

The signature covers ``<timestamp>.<body>`` with the user's webhook secret and travels as
``X-LWR-Signature: sha256=<hex>`` beside ``X-LWR-Timestamp`` (Unix seconds): a receiver
recomputes it over the exact bytes it received and refuses an old timestamp, so a captured
request cannot be replayed later. ``X-LWR-Delivery`` is the same on every retry of one
notification: the receiver's key to drop a repeat.

The POST goes through :mod:`http.client` on a socket connected
(:class:`~lwr.egress.PinnedConnection`) to an address :class:`~lwr.egress.EgressPolicy` has
just judged: the host is resolved once, every answer checked, and the connection made to one
of those answers, with the URL's host in the ``Host`` header and, for https, as the TLS server
name whose certificate is verified. A client that resolved the name again (urllib does) could
be sent elsewhere by a DNS answer changed between the check and the connection. Redirects are
never followed (a 3xx is a failed try).

No proxy from the environment (``https_proxy``, ``http_proxy``, ``no_proxy``) is used: a
server's environment comes from whatever started it, and a variable meant for other tools
would silently move where webhooks go. An operator names one with ``notify_webhook_proxy``
(:class:`~lwr.proxy.Proxy`): then the target is judged as above, every try, and the POST
goes through the proxy by the URL's host name (a CONNECT tunnel for https, with TLS and its
certificate check end to end; an absolute-form request for http), with the proxy's credentials
if it has some, TLS to it for an https proxy. The proxy resolves the name again, so the pinning
no longer holds there (docs/security.md). ``notify_webhook_ca_file`` replaces the system's CAs
for receivers' certificates, and an https proxy's (the ``context`` the sender passes).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import ssl
import time
from urllib.parse import urlsplit

from lwr.egress import EgressPolicy, PinnedConnection, PinnedTlsConnection, UnresolvedHost
from lwr.errors import ProxyError
from lwr.proxy import ForwardedConnection, Proxy, TunnelledTlsConnection, refusal
from lwr.service.notify.outbox import Notification

SIGNATURE_HEADER = "X-LWR-Signature"
TIMESTAMP_HEADER = "X-LWR-Timestamp"
DELIVERY_HEADER = "X-LWR-Delivery"


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


def send(
    item: Notification,
    timeout: float,
    policy: EgressPolicy,
    context: ssl.SSLContext | None = None,
    proxy: Proxy | None = None,
) -> None:
    """POST ``item``'s body to its URL; raises WebhookError unless the answer is 2xx.

    :class:`~lwr.egress.EgressRefused` (a permanent failure) when the host now
    resolves to an address ``policy`` refuses, proxy or not; ``context`` verifies https
    receivers (the system's CAs when None); ``proxy``: the operator's forward proxy.
    """
    parts = urlsplit(item.target)
    https = parts.scheme == "https"
    try:
        host, port = parts.hostname or "", parts.port or (443 if https else 80)
        targets = policy.targets(host, port)  # judged before any connection, proxy or not
    except (UnresolvedHost, ValueError) as exc:
        raise WebhookError(f"{item.target}: {exc}") from None
    body = json.dumps(item.body, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "LWR-notify",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(item.secret or "", timestamp, body),
        DELIVERY_HEADER: item.id,
    }
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    tls = context or ssl.create_default_context()
    if proxy is not None:
        try:
            if https:
                through: http.client.HTTPConnection = TunnelledTlsConnection(
                    proxy, host, port, timeout, tls
                )
            else:  # the proxy's request form: the absolute URL, made by the connection
                through = ForwardedConnection(proxy, host, port, timeout, tls)
        except http.client.InvalidURL as exc:
            raise WebhookError(f"{item.target}: {exc}") from None
        return _post(through, item.target, path, body, headers, proxy if not https else None)
    error: Exception | None = None
    for target in targets:  # the first address that takes the connection gets the POST
        try:
            connection = (
                PinnedTlsConnection(host, port, [target], timeout, tls)
                if https
                else PinnedConnection(host, port, [target], timeout)
            )
        except http.client.InvalidURL as exc:  # a host http.client will not put in Host
            raise WebhookError(f"{item.target}: {exc}") from None
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            error = exc
            continue
        return _post(connection, item.target, path, body, headers)
    raise WebhookError(f"{item.target}: {type(error).__name__}: {error}")


def _post(
    connection: http.client.HTTPConnection,
    url: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    forwarded_by: Proxy | None = None,
) -> None:
    """One POST on ``connection`` (connected here unless it already is); 2xx or WebhookError.

    ``forwarded_by``: the proxy a plain-http POST went to, whose own 407 is told apart from
    the receiver's answers. A proxy's refusal (lwr.errors.ProxyError) is a failed try like any
    other, retried by the outbox's rules; its message names the proxy without credentials.
    """
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        status = response.status
        if status == 407 and forwarded_by is not None:
            raise refusal(forwarded_by, f"POST {url}", status, "407")
    except ProxyError as exc:
        raise WebhookError(f"{url}: {type(exc).__name__}: {exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookError(f"{url}: {type(exc).__name__}: {exc}") from None
    finally:
        connection.close()
    if not 200 <= status < 300:  # a redirect too: it is an answer, not a delivery
        raise WebhookError(f"HTTP {status} from {url}")
