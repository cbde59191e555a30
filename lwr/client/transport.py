"""HTTP transport of the client: JSON calls, streamed uploads and downloads, retries.

Speed comes from three choices. Each thread keeps one keep-alive ``http.client`` connection to the
server, so the dozens of small calls of a job pay for one TCP (or TLS) handshake. Uploads go out
with ``socket.sendfile`` in large pieces (the kernel copies file pages to the socket, no Python
buffer in between), and downloads of plain-HTTP bodies with a known length are moved from the
socket to the file by ``splice`` (:mod:`lwr.staging.splice`; elsewhere ``readinto`` into one
reused buffer). Nothing ever holds a whole file in memory.

Robustness: connection errors, timeouts, truncated bodies and HTTP 5xx/408/429 are retried with
exponential backoff (the policy of :mod:`lwr.staging.transfer`); any other 4xx is not, and becomes
the matching :mod:`lwr.errors` class carrying the server's own message. A call that is not safe to
repeat (``submit``) is retried only when the request never reached the server. Every download is
checked against its ``Content-Length`` and lands via a temporary file renamed into place; every
upload is checked against the ``size`` the server says it stored (when it says one).

The private token travels in the query string, as the protocol demands, and is redacted from every
log line and error message.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from lwr.client.progress import Progress
from lwr.errors import (
    AuthorizationError,
    InvalidJobStateError,
    InvalidRequestError,
    LwrError,
    NotFoundError,
    PayloadTooLargeError,
    ServerUnavailableError,
    StagingError,
)
from lwr.staging import bodies, digest
from lwr.staging.bodies import TransientError
from lwr.staging.transfer import MIB, RetryPolicy, describe_error, redact_url

log = logging.getLogger(__name__)

#: HTTP statuses worth another try besides 5xx
_RETRIED_STATUSES = frozenset({408, 429})
#: HTTP refusals -> the error a caller gets
_STATUS_ERRORS: Mapping[int, type[LwrError]] = {
    400: InvalidRequestError,
    403: AuthorizationError,
    401: AuthorizationError,
    404: NotFoundError,
    409: InvalidJobStateError,
    413: PayloadTooLargeError,
}


@dataclass(frozen=True)
class TransportOptions:
    """How the client talks to the server; every field has a sensible default.

    ``retry`` holds the retry count, the first backoff delay (doubling up to ``max_delay``), the
    socket timeout and the transfer chunk size. ``progress`` forces the progress bar on or off
    (``None``: on when stderr is a terminal) for files of at least ``progress_threshold`` bytes.
    ``verify_tls`` may be turned off for a server with a self-signed certificate. ``checksum``
    asks the server for the SHA-256 of every file moved and compares it with the local one
    (:mod:`lwr.staging.digest`): a full extra read of each file on both sides, so off by default;
    a server that offers no checksum (Pulsar) is checked by size only.
    """

    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            retries=4, delay=0.5, max_delay=15.0, timeout=120.0, chunk_size=4 * MIB
        )
    )
    progress: bool | None = None
    progress_threshold: int = 8 * MIB
    verify_tls: bool = True
    checksum: bool = False


class _Transient(TransientError):
    """A failure another attempt may not meet."""


class _ConnectFailed(_Transient):
    """The request never reached the server: safe to retry whatever the call."""


class _Refused(Exception):
    """The server answered with a status no retry can change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpTransport:
    """Talks to one LWR or Pulsar server (``url`` may end in ``/managers/NAME/``)."""

    def __init__(
        self,
        url: str,
        private_token: str | None = None,
        options: TransportOptions | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequestError(f"not an http(s) URL: {redact_url(url)}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/") + "/"
        self.private_token = private_token or None
        self.options = options or TransportOptions()
        self._sleep = sleep
        self._local = threading.local()

    # -- public calls ---------------------------------------------------------------------------

    def call(
        self, method: str, route: str, params: Mapping[str, Any] | None = None, *, safe: bool = True
    ) -> Any:
        """A call answered with JSON; ``safe=False`` for one that must not run twice."""
        target = self._target(route, params)

        def attempt() -> Any:
            response = self._send(method, target, safe=safe)
            body = response.read()
            try:
                return json.loads(body) if body else None
            except ValueError:
                # Pulsar answers some calls (submit) with a bare "OK"
                return body.decode("utf-8", errors="replace")

        return self._retrying(method, target, attempt, safe=safe, error=ServerUnavailableError)

    def upload(
        self, route: str, params: Mapping[str, Any], source: Path, label: str = ""
    ) -> dict[str, Any]:
        """POST ``source`` as the raw request body; return the server's JSON answer."""
        target = self._target(route, params)
        size = os.path.getsize(source)
        progress = self._progress(f"up {label or source.name}", size)

        local = digest.sha256_file(source).hex() if self.options.checksum else None

        def attempt() -> dict[str, Any]:
            progress.reset()
            with open(source, "rb") as handle:
                response = self._send(
                    "POST", target, body=handle, size=size, progress=progress, **self._want()
                )
                answer = json.loads(response.read() or b"{}")
            if not isinstance(answer, dict):
                return {}
            stored = answer.get("size")
            if isinstance(stored, int) and stored != size:
                raise _Transient(f"server stored {stored} of the {size} bytes sent")
            stored_sha = answer.get("sha256")
            if local is not None and isinstance(stored_sha, str) and stored_sha != local:
                raise _Transient("the SHA-256 of the stored file differs from the one sent")
            return answer

        try:
            return self._retrying("POST", target, attempt, safe=True, error=StagingError)
        finally:
            progress.close()

    def download(
        self, route: str, params: Mapping[str, Any], target_path: Path, label: str = ""
    ) -> int:
        """GET a file into ``target_path`` (atomically); return its size in bytes."""
        target = self._target(route, params)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        label = f"down {label or target_path.name}"

        def attempt() -> int:
            response = self._send("GET", target, **self._want())
            progress = self._progress(label, bodies.announced(response) or 0)
            offered = digest.parse_sha256(response.getheader("Repr-Digest"))
            try:
                return bodies.receive_file(
                    response,
                    target_path,
                    self._chunk,
                    self.options.retry.timeout,
                    progress.update,
                    splice_ok=self.scheme == "http",
                    sha256=offered if self.options.checksum else None,
                )
            except BaseException:
                self.close()  # the connection is mid-body: never reuse it
                raise
            finally:
                progress.close()

        return self._retrying("GET", target, attempt, safe=True, error=StagingError)

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def describe(self, route: str = "", params: Mapping[str, Any] | None = None) -> str:
        """The URL of ``route`` as it may appear in a message: token redacted."""
        return self.describe_target(self._target(route, params))

    # -- plumbing -------------------------------------------------------------------------------

    def _target(self, route: str, params: Mapping[str, Any] | None) -> str:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if self.private_token:
            query["private_token"] = self.private_token
        path = self.prefix + route.lstrip("/")
        return path + ("?" + urlencode(query) if query else "")

    def _want(self) -> dict[str, Any]:
        """Extra ``_send`` arguments: ask for the file's checksum when checking them."""
        if not self.options.checksum:
            return {}
        return {"headers": {"Want-Repr-Digest": digest.WANT_SHA256}}

    @property
    def _chunk(self) -> int:
        """Bytes per piece when a body must pass through Python (TLS, no splice)."""
        return max(self.options.retry.chunk_size, MIB)

    def _progress(self, label: str, total: int) -> Progress:
        return Progress(
            label,
            total,
            enabled=self.options.progress,
            threshold=self.options.progress_threshold,
        )

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it was used before (it may have gone stale)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            return conn, True
        timeout = self.options.retry.timeout
        if self.scheme == "https":
            context = ssl.create_default_context()
            if not self.options.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise _ConnectFailed(f"cannot connect: {describe_error(exc)}") from None
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.conn = conn
        return conn, False

    def _send(
        self,
        method: str,
        target: str,
        *,
        body: Any = None,
        size: int = 0,
        progress: Progress | None = None,
        safe: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        """One request on this thread's connection; a stale kept-alive one is replaced once."""
        for fresh_try in (False, True):
            conn, reused = self._connection()
            try:
                conn.putrequest(method, target, skip_accept_encoding=True)
                conn.putheader("Accept-Encoding", "identity")
                conn.putheader("Content-Length", str(size))
                if body is not None:
                    conn.putheader("Content-Type", "application/octet-stream")
                for name, value in (headers or {}).items():
                    conn.putheader(name, value)
                conn.endheaders()
                if body is not None:
                    assert conn.sock is not None
                    report = progress.update if progress else bodies.no_progress
                    bodies.send_file(conn.sock, body, size, self._chunk, report)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                self._local.conn = None
                if reused and not fresh_try:
                    log.debug("kept-alive connection went stale (%s); reconnecting", exc)
                    if body is not None:
                        body.seek(0)
                    continue
                if not safe:
                    cause = describe_error(exc)
                    raise _Refused(0, f"connection lost after sending: {cause}") from None
                raise
            except BaseException:
                conn.close()
                self._local.conn = None
                raise
            if response.will_close:
                self._local.conn = None  # the server will close it; do not reuse
            _check(response)
            return response
        raise AssertionError("unreachable")

    def _retrying(
        self,
        method: str,
        target: str,
        attempt: Callable[[], Any],
        *,
        safe: bool,
        error: type[LwrError],
    ) -> Any:
        delays = self.options.retry.delays()
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except _Refused as exc:
                cls = _STATUS_ERRORS.get(exc.status, error)
                raise cls(f"{method} {self.describe_target(target)}: {exc}") from None
            except (TransientError, OSError, http.client.HTTPException) as exc:
                cause = describe_error(exc)
                retriable = safe or isinstance(exc, _ConnectFailed)
                wait = next(delays, None) if retriable else None
                if wait is None:
                    raise error(
                        f"{method} {self.describe_target(target)} failed after {tries} "
                        f"attempt(s): {cause}"
                    ) from None
                log.warning(
                    "%s %s failed (%s); retry %d in %.1fs",
                    method,
                    self.describe_target(target),
                    cause,
                    tries,
                    wait,
                )
                self._sleep(wait)

    def describe_target(self, target: str) -> str:
        """A request target (path and query) with the token redacted, for messages."""
        netloc = self.host + (f":{self.port}" if self.port else "")
        url = redact_url(f"{self.scheme}://{netloc}{target}")
        return url if len(url) <= 240 else url[:240] + "…"


def _check(response: http.client.HTTPResponse) -> None:
    """Turn an error answer into ``_Transient`` (worth a retry) or ``_Refused``."""
    if 200 <= response.status < 300:
        return
    raw = response.read(64 * 1024)
    said = raw.decode("utf-8", errors="replace").strip()
    try:
        decoded = json.loads(raw)
        if isinstance(decoded, dict) and "error" in decoded:
            said = str(decoded["error"])
    except ValueError:
        pass
    detail = f"HTTP {response.status} {response.reason}" + (f": {said}" if said else "")
    if response.status >= 500 or response.status in _RETRIED_STATUSES:
        raise _Transient(detail)
    raise _Refused(response.status, detail)
