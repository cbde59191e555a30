"""An operator's forward proxy for the server's outgoing HTTP: webhooks and TES transfers.

Where a site's outgoing traffic must pass a proxy, the server is told so by an option of each
use (``notify_webhook_proxy``, ``tes_http_proxy``), never by the environment's ``http_proxy``
family: a variable set for other tools by whatever started the server would silently move
where the server connects. The proxy is the operator's and trusted as configured (its own
address is never judged); every target reached through it is judged first by
:mod:`lwr.egress`, by the caller, before the proxy is asked (docs/security.md, "Outgoing
connections through a proxy", says what that keeps and what it gives up).

Three things a proxy may want, handled here so each use gets them alike:

* **Credentials** (``http://user:pass@host:port``, percent-encoded userinfo decoded): sent as
  ``Proxy-Authorization: Basic`` on the ``CONNECT`` and on absolute-form plain-http requests,
  never inside a tunnel (the target would read them). They are kept out of every text the
  server shows: ``str()`` and ``repr()`` of a :class:`Proxy` hide them, so do the option's
  errors. A ``407`` is a :class:`~lwr.errors.ProxyAuthError`, not a stray HTTP status.
* **TLS to the proxy** (``https://host:port``): the proxy's certificate is verified with the
  same context as the targets' (the use's CA option or the system's CAs); a tunnel then runs
  a second TLS session, the target's, inside the first (:class:`TlsInTls`).
* **The request forms**: ``CONNECT host:port`` for https targets, with TLS end to end and the
  URL's host as server name; the absolute URL for plain http, which the proxy forwards.
"""

from __future__ import annotations

import base64
import http.client
import io
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from lwr.errors import ConfigurationError, ProxyAuthError, ProxyError

T = TypeVar("T")

#: what stands for a proxy URL's userinfo wherever the URL is shown
HIDDEN = "[credentials hidden]"


@dataclass(frozen=True)
class Proxy:
    """A forward proxy: ``http(s)://[user:password@]host:port``. ``tls``: the proxy is reached
    over TLS. Credentials are left out of ``repr`` and ``str`` (logs, errors, JSON)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """The option's value; ValueError naming what is wrong, never quoting credentials."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError("is not a URL (http(s)://[user:password@]host:port)") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be http(s)://[user:password@]host:port, nothing more")
        if port is None:
            raise ValueError("must name its port (http://host:port)")
        username = password = None
        if "@" in parts.netloc:
            username = unquote(parts.username or "")
            password = unquote(parts.password or "")
            if not username:
                raise ValueError("names credentials without a user name")
            if ":" in username:  # Basic joins them with ':' (RFC 7617): the user may not hold one
                raise ValueError("has a ':' in its user name, which Basic credentials cannot carry")
            if any(ord(c) < 32 or ord(c) == 127 for c in username + password):
                raise ValueError("has control characters in its credentials")
        return cls(parts.hostname, port, parts.scheme == "https", username, password)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (None: the proxy is not given credentials)."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __str__(self) -> str:
        who = f"{HIDDEN}@" if self.username is not None else ""
        return f"{self.scheme}://{who}{authority(self.host, self.port)}"


def redact(url: str) -> str:
    """A proxy option's text with any userinfo replaced (for a configuration error)."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail.split("/", 1)[0]:
        return url
    return f"{head}://{HIDDEN}@{tail.split('/', 1)[0].rpartition('@')[2]}"


def authority(host: str, port: int, default: int | None = None) -> str:
    """``host:port`` as a request line names it (brackets around IPv6; no default port)."""
    name = f"[{host}]" if ":" in host else host
    return name if port == default else f"{name}:{port}"


class _ThroughProxy(http.client.HTTPConnection):
    """A connection whose socket goes to ``proxy`` (over TLS for an https proxy, verified by
    ``context``), speaking for ``host``:``port``."""

    def __init__(
        self,
        proxy: Proxy,
        host: str,
        port: int,
        timeout: float,
        context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.proxy = proxy
        self._context = context or ssl.create_default_context()

    def _proxy_socket(self) -> socket.socket:
        sock = socket.create_connection((self.proxy.host, self.proxy.port), self.timeout)
        if not self.proxy.tls:
            return sock
        try:
            return self._context.wrap_socket(sock, server_hostname=self.proxy.host)
        except BaseException:
            sock.close()
            raise

    def connect(self) -> None:
        self.sock = self._proxy_socket()


class ForwardedConnection(_ThroughProxy):
    """Plain HTTP to ``host`` through the proxy: the request line names the absolute URL (a
    path given is made absolute), with the proxy's credentials; the proxy connects by name."""

    def putrequest(
        self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False
    ) -> None:
        if url.startswith("/"):
            url = f"http://{authority(self.host, self.port, 80)}{url}"
        super().putrequest(method, url, skip_host, skip_accept_encoding)
        credentials = self.proxy.authorization()
        if credentials is not None:
            self.putheader("Proxy-Authorization", credentials)


class TunnelledTlsConnection(_ThroughProxy):
    """HTTPS to ``host`` through the proxy's CONNECT tunnel: TLS runs end to end inside it,
    with the URL host as server name and certificate name, so the proxy sees only the name
    and port (http.client's own tunnel writes IPv6 hosts without brackets before 3.12). The
    credentials go on the CONNECT only: nothing inside the tunnel carries them."""

    def connect(self) -> None:
        sock = self._proxy_socket()
        try:
            _open_tunnel(sock, self.proxy, authority(self.host, self.port))
            if isinstance(sock, ssl.SSLSocket):
                self.sock = TlsInTls(sock, self._context, self.host)
            else:
                self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _open_tunnel(sock: socket.socket, proxy: Proxy, target: str) -> None:
    """Ask for ``CONNECT target``; a typed ProxyError unless the proxy answers 2xx."""
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    credentials = proxy.authorization()
    if credentials is not None:
        lines.append(f"Proxy-Authorization: {credentials}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    # unbuffered: nothing of the TLS stream that follows may be read here
    answer = sock.makefile("rb", buffering=0)
    try:
        status = answer.readline(1024).decode("latin-1").strip().split(" ", 2)
        while answer.readline(8192) not in (b"\r\n", b"\n", b""):
            pass
    finally:
        answer.close()
    code = int(status[1]) if len(status) >= 2 and status[1].isdigit() else None
    if code is not None and 200 <= code < 300:
        return
    said = " ".join(status[1:]) or "nothing"
    raise refusal(proxy, f"CONNECT {target}", code, said)


def refusal(proxy: Proxy, request: str, code: int | None, said: str) -> ProxyError:
    """The typed error for a proxy's refusal of ``request`` (a 407: its credentials)."""
    if code == 407:
        given = "the credentials given were refused" if proxy.username else "none were given"
        return ProxyAuthError(
            f"the proxy {proxy} asked for credentials on {request} (407; {given})", code
        )
    return ProxyError(f"the proxy {proxy} answered {request} with {said}", code)


class TlsInTls:
    """Socket-like TLS to the target inside the TLS session with the proxy (an https proxy).

    :mod:`ssl` cannot wrap an :class:`ssl.SSLSocket` again, so the inner session is an
    :class:`ssl.SSLObject` over memory buffers, its bytes carried by the outer socket. It has
    what :mod:`http.client` and :mod:`lwr.staging.bodies` use (``sendall``, ``recv``,
    ``makefile``) and no ``fileno``: its bytes must never be sent or read around the TLS.
    """

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, host: str) -> None:
        self._outer = outer
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=host)
        self._readers = 0
        self._closing = False
        self._run(self._tls.do_handshake)

    def _run(self, operation: Callable[..., T], *args: Any) -> T:
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush()
                data = self._outer.recv(65536)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            self._flush()
            return result

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._outer.sendall(pending)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self._run(self._tls.write, view) :]

    def send(self, data: bytes | bytearray | memoryview) -> int:
        self.sendall(data)
        return len(data)

    def recv(self, size: int) -> bytes:
        try:
            return bytes(self._run(self._tls.read, size))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def recv_into(self, buffer: memoryview | bytearray, size: int = 0) -> int:
        data = self.recv(size or len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def makefile(self, mode: str = "rb", buffering: int | None = None) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_Reader(self), buffering or io.DEFAULT_BUFFER_SIZE)

    def settimeout(self, timeout: float | None) -> None:
        self._outer.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._outer.gettimeout()

    def setsockopt(self, *args: int) -> None:
        self._outer.setsockopt(*args)

    def close(self) -> None:
        """Closed once no reader is left: http.client closes the connection of a response
        it will not reuse before the body is read, as a socket's ``makefile`` allows."""
        self._closing = True
        if self._readers == 0:
            self._outer.close()

    def _release(self) -> None:
        self._readers -= 1
        if self._closing:
            self.close()


class _Reader(io.RawIOBase):
    def __init__(self, sock: TlsInTls) -> None:
        self._sock: TlsInTls | None = sock

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock._release()
        super().close()

    def readinto(self, buffer: Any) -> int:  # any writable buffer (typeshed: Buffer, 3.12)
        if self._sock is None:
            raise ValueError("read of a closed response")
        return self._sock.recv_into(buffer)


def parse_option(key: str, text: str) -> Proxy | None:
    """A ``*_proxy`` option (empty: None); a ConfigurationError naming ``key`` and the value
    with its credentials hidden."""
    if not text.strip():
        return None
    try:
        return Proxy.parse(text.strip())
    except ValueError as exc:
        raise ConfigurationError(f"{key} {redact(text.strip())!r}: {exc}") from None
