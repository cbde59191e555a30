"""HTTP file transfers for server-side staging: fetch (GET) and push (POST multipart or PUT).

Both directions stream in large chunks (never a whole file in memory), retry with exponential
backoff on what can heal by itself (connection errors, timeouts, truncated bodies, 5xx answers) and
give up at once on what cannot (4xx). A fetch lands in a temporary file beside its target and is
renamed into place only once its size is checked, so a broken download never leaves a half file a
job could read. Every failure is a :class:`~lwr.errors.StagingError` naming the URL (tokens
redacted), the file and what went wrong, because "staging failed" alone helps nobody.

Standard library only (``http.client``): the transfers are simple, and this keeps the server and
our client free of an HTTP dependency. Redirects are never followed (a 3xx is a refusal). Given an
:class:`~lwr.egress.EgressPolicy` (a TES task of a service user), a transfer resolves the host
once, refuses it unless every address is allowed, and connects to a judged address
(:class:`~lwr.egress.PinnedConnection`): a refusal is final, not retried. Given a
:class:`~lwr.proxy.Proxy` (``tes_http_proxy``), the target is judged the same way first, then
the request goes through the proxy by the URL's host name (:mod:`lwr.proxy`); a proxy's 407,
or another refusal of its own, is final too, its 5xx retried like a server's.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lwr.egress import (
    EgressPolicy,
    EgressRefused,
    PinnedConnection,
    PinnedTlsConnection,
    Target,
    UnresolvedHost,
)
from lwr.errors import ProxyError, StagingError
from lwr.proxy import ForwardedConnection, Proxy, TunnelledTlsConnection, refusal
from lwr.staging import bodies
from lwr.staging.bodies import TransientError

log = logging.getLogger(__name__)

MIB = 1024 * 1024

#: query parameters whose values never appear in a message or a log line
_SECRET_PARAMS = re.compile(r"(token|key|secret|password|auth|signature)", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``retries`` extra attempts, waiting ``delay``, doubling to ``max_delay``."""

    retries: int = 3
    delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 60.0
    chunk_size: int = MIB

    def delays(self) -> Iterator[float]:
        """The waits before each retry."""
        wait = self.delay
        for _ in range(self.retries):
            yield min(wait, self.max_delay)
            wait *= 2


class Refused(Exception):
    """A failure retrying cannot fix (the peer refused the request)."""


def redact_url(url: str) -> str:
    """``url`` with the values of token-like query parameters replaced by ``[redacted]``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[unparsable URL]"
    if not parts.query:
        return url
    query = [
        (k, "[redacted]" if _SECRET_PARAMS.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.netloc.rpartition("@")[2]  # never show user:password@
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="[]/")))


def fetch(
    url: str,
    target: Path,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[], bodies.Progress] | None = None,
    egress: EgressPolicy | None = None,
    proxy: Proxy | None = None,
    tls: ssl.SSLContext | None = None,
) -> int:
    """Download ``url`` into ``target`` atomically; return the number of bytes written.

    ``progress``, when given, makes each attempt's progress callback (an attempt starts the file
    again); the callback may raise to stop the download, which then is not retried (a TES task's
    inputs passing their owner's plan: lwr.tes.policy). ``egress``, when given, judges where
    the connection goes, ``proxy`` through what (see the module docstring); ``tls`` verifies
    https targets and an https proxy (None: the system's CAs; see :func:`tls_context`).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    return with_retries(
        "GET",
        url,
        target,
        policy,
        sleep,
        lambda: _get_once(
            url, target, policy, progress() if progress else bodies.no_progress, egress, proxy, tls
        ),
    )


def push(
    url: str,
    source: Path,
    policy: RetryPolicy = RetryPolicy(),
    method: str = "POST",
    sleep: Callable[[float], None] = time.sleep,
    egress: EgressPolicy | None = None,
    proxy: Proxy | None = None,
    tls: ssl.SSLContext | None = None,
) -> int:
    """Upload ``source``: ``POST`` as multipart field ``file``, or ``PUT`` as the raw body."""
    if method not in ("POST", "PUT"):
        raise ValueError(f"push supports POST and PUT, not {method}")
    if not source.is_file():
        raise StagingError(f"cannot send {source}: it does not exist or is not a file")
    return with_retries(
        method,
        url,
        source,
        policy,
        sleep,
        lambda: _send_once(method, url, source, policy, egress, proxy, tls),
    )


def with_retries(
    method: str,
    url: str,
    path: Path,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    attempt: Callable[[], int],
) -> int:
    """Call ``attempt`` until it succeeds; retry what may heal, as ``policy`` says.

    A :class:`Refused` failure is final at once; every message names ``method``, ``url``
    (redacted) and ``path``. ``attempt`` may keep state between calls (a tus upload's offset).
    """
    delays = policy.delays()
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except Refused as exc:
            raise StagingError(f"{method} {redact_url(url)} for {path} failed: {exc}") from None
        except ssl.SSLCertVerificationError as exc:  # a certificate no retry makes trusted
            raise StagingError(
                f"{method} {redact_url(url)} for {path} failed: {exc.verify_message or exc} "
                f"(certificate verify failed; is its CA among the ones trusted here?)"
            ) from None
        except (TransientError, OSError, http.client.HTTPException, ProxyError) as exc:
            if isinstance(exc, ProxyError) and (exc.proxy_status or 500) < 500:
                # a 407 (the operator's credentials) or the proxy's own refusal: final
                raise StagingError(f"{method} {redact_url(url)} for {path} failed: {exc}") from None
            cause = describe_error(exc)  # a proxy's 5xx or silence: it may heal
            wait = next(delays, None)
            if wait is None:
                raise StagingError(
                    f"{method} {redact_url(url)} for {path} failed after {tries} attempt(s): "
                    f"{cause}"
                ) from None
            log.warning(
                "%s %s for %s failed (%s); retry %d in %.1fs",
                method,
                redact_url(url),
                path,
                cause,
                tries,
                wait,
            )
            sleep(wait)


def describe_error(exc: BaseException) -> str:
    """A short, readable cause for a failed transfer, for error messages and logs."""
    if isinstance(exc, TransientError):
        return str(exc)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed after {len(exc.partial)} bytes of the body"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def tls_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """What verifies https peers when ``ca_file`` (a PEM bundle) is named: its CAs only, like
    ``notify_webhook_ca_file``; None: the system's CAs (each connection's default context).

    Raises :class:`ssl.SSLError` for a file without a usable certificate and :class:`OSError`
    for one that cannot be read; the configuration turns both into an error naming the option.
    """
    return None if ca_file is None else ssl.create_default_context(cafile=str(ca_file))


def connect(
    url: str,
    timeout: float,
    egress: EgressPolicy | None = None,
    proxy: Proxy | None = None,
    tls: ssl.SSLContext | None = None,
) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an http(s) URL: {redact_url(url)}")
    port = parts.port
    conn: http.client.HTTPConnection
    if proxy is not None:
        conn = _proxied(parts.scheme, parts.hostname, port, timeout, egress, proxy, tls)
    elif egress is not None:
        conn = _pinned(parts.scheme, parts.hostname, port, timeout, egress, tls)
    elif parts.scheme == "https":
        context = tls or ssl.create_default_context()
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return conn, path


def _proxied(
    scheme: str,
    host: str,
    port: int | None,
    timeout: float,
    egress: EgressPolicy | None,
    proxy: Proxy,
    tls: ssl.SSLContext | None = None,
) -> http.client.HTTPConnection:
    """A connection through ``proxy``, once ``egress`` (when given) allowed every address of
    ``host``: judged here before the proxy hears of it, as without a proxy."""
    port = port or (443 if scheme == "https" else 80)
    if egress is not None:
        _judged(host, port, egress)
    context = tls or ssl.create_default_context()
    if scheme == "https":
        return TunnelledTlsConnection(proxy, host, port, timeout, context)
    return ForwardedConnection(proxy, host, port, timeout, context)


def _judged(host: str, port: int, egress: EgressPolicy) -> list[Target]:
    """Every address of ``host`` if ``egress`` allows them all (:class:`Refused` if not)."""
    try:
        return egress.targets(host, port)
    except EgressRefused as exc:
        raise Refused(
            f"refused: {exc}; a service user's task may only reach public addresses (the "
            "server's administrator can allow networks: tes_user_allowed_networks)"
        ) from None
    except UnresolvedHost as exc:
        raise TransientError(str(exc)) from None


def _pinned(
    scheme: str,
    host: str,
    port: int | None,
    timeout: float,
    egress: EgressPolicy,
    tls: ssl.SSLContext | None = None,
) -> http.client.HTTPConnection:
    """A connection to an address of ``host`` that ``egress`` allows (:class:`Refused` if none)."""
    port = port or (443 if scheme == "https" else 80)
    targets = _judged(host, port, egress)
    if scheme == "https":
        context = tls or ssl.create_default_context()
        return PinnedTlsConnection(host, port, targets, timeout, context)
    return PinnedConnection(host, port, targets, timeout)


def check_status(
    response: http.client.HTTPResponse, conn: http.client.HTTPConnection | None = None
) -> None:
    if 200 <= response.status < 300:
        return
    if response.status == 407 and isinstance(conn, ForwardedConnection):  # the proxy's own
        raise refusal(conn.proxy, f"the request to {conn.host}", 407, "407")
    said = response.read(2048).decode("utf-8", errors="replace").strip()
    detail = f"HTTP {response.status} {response.reason}" + (f": {said}" if said else "")
    if response.status >= 500 or response.status in (408, 429):
        raise TransientError(detail)
    raise Refused(detail)


def _get_once(
    url: str,
    target: Path,
    policy: RetryPolicy,
    progress: bodies.Progress = bodies.no_progress,
    egress: EgressPolicy | None = None,
    proxy: Proxy | None = None,
    tls: ssl.SSLContext | None = None,
) -> int:
    conn, path = connect(url, policy.timeout, egress, proxy, tls)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "identity"})
        response = conn.getresponse()
        check_status(response, conn)
        return bodies.receive_file(
            response,
            target,
            max(policy.chunk_size, 64 * 1024),
            policy.timeout,
            progress,
            # plain TCP only: not TLS, nor a tunnel's TLS (whose socket is a plain one too)
            splice_ok=type(conn.sock) is socket.socket,
        )
    finally:
        conn.close()


def _send_once(
    method: str,
    url: str,
    source: Path,
    policy: RetryPolicy,
    egress: EgressPolicy | None = None,
    proxy: Proxy | None = None,
    tls: ssl.SSLContext | None = None,
) -> int:
    conn, path = connect(url, policy.timeout, egress, proxy, tls)
    try:
        with open(source, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if method == "POST":
                boundary = uuid.uuid4().hex
                filename = source.name.replace('"', "%22").replace("\r", "").replace("\n", "")
                head = (
                    f"--{boundary}\r\n"
                    f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n"
                ).encode()
                tail = f"\r\n--{boundary}--\r\n".encode()
                content_type = f"multipart/form-data; boundary={boundary}"
            else:
                head, tail, content_type = b"", b"", "application/octet-stream"
            conn.putrequest(method, path)
            conn.putheader("Content-Type", content_type)
            conn.putheader("Content-Length", str(len(head) + size + len(tail)))
            conn.endheaders()
            conn.send(head)
            assert conn.sock is not None  # endheaders() connected it
            bodies.send_file(conn.sock, handle, size, max(policy.chunk_size, 64 * 1024))
            conn.send(tail)
        response = conn.getresponse()
        check_status(response, conn)
        response.read()
        return size
    finally:
        conn.close()
