"""Real receivers for notification tests: an SMTP server (aiosmtpd), a webhook endpoint, and
a forward proxy webhooks may be sent through.

The first two record only what they fully took (a mail after its DATA, a webhook after its body
was read and its signature verified), and can be told to hold the sender mid-delivery
(``block``) so a test can kill the sending server at exactly that moment.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import selectors
import socket
import ssl
import subprocess
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lwr.service.notify import webhook
from tests.integration.server import free_port


def self_signed(directory: Path, names: str) -> Path:
    """``directory/cert.pem``, self-signed for ``names`` (``IP:127.0.0.1,DNS:localhost``),
    its key in ``directory/key.pem``; made by the openssl command."""
    pem = directory / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=lwr-test", "-addext", f"subjectAltName={names}"),
            *("-keyout", str(directory / "key.pem"), "-out", str(pem)),
        ],
        check=True,
        capture_output=True,
    )
    return pem


def signed_by_test_ca(directory: Path, host: str, *more: str) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for ``host`` (a name or an address) and
    ``more`` hosts: ``(ca.pem, server.pem, server-key.pem)`` in ``directory``. The CA file
    holds the CA alone, so trusting it trusts the chain, not one pinned certificate."""
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LWR test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(*[False] * 5, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    alt: list[x509.GeneralName] = []
    for name in (host, *more):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def server_tls(certificate: Path, key: Path) -> ssl.SSLContext:
    """A receiver's TLS context serving ``certificate``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    return context


class MailServer:
    """aiosmtpd on a free port; ``messages`` holds each accepted mail's bytes."""

    def __init__(
        self,
        tls_context: ssl.SSLContext | None = None,
        logins: dict[str, str] | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.messages: list[bytes] = []
        self.logins: list[str] = []
        self.block = False
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.port = free_port()
        options: dict[str, Any] = {}
        if tls_context is not None and implicit_tls:
            options.update(ssl_context=tls_context)
        elif tls_context is not None:
            options.update(tls_context=tls_context, require_starttls=True)
        if logins is not None:
            options.update(authenticator=self._authenticator(logins), auth_required=True)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)

    def _authenticator(self, logins: dict[str, str]) -> Any:
        def check(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and logins.get(data.login.decode()) == data.password.decode()
            )
            if ok:
                self.logins.append(data.login.decode())
            return AuthResult(success=ok)

        return check

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.block:  # hold the sender here: the mail is not taken until DATA ends
            self.blocked.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            self.block = False
            return "451 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(bytes(envelope.original_content or b""))
        return "250 Message accepted"

    def __enter__(self) -> MailServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._controller.stop()


class WebhookReceiver:
    """An HTTP endpoint ``/hook/<user>`` verifying each POST with ``secrets[user]``.

    ``fail_first`` answers the first N tries 500 (to prove retries); ``tries`` has every try,
    ``accepted`` those answered 200, each with the ``Host`` header it came with. ``host`` is the
    address it listens on (any of 127.0.0.0/8 works on Linux, so tests can tell receivers apart
    by address) and ``port`` its port (0: a free one). With ``tls`` it speaks HTTPS, and
    ``server_names`` has the TLS server name (SNI) of each connection.
    """

    def __init__(
        self,
        secrets: dict[str, str],
        fail_first: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.secrets = secrets
        self.fail_first = fail_first
        self.tries: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.block = False
        self.blocked = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.host = host
        self.server_names: list[str | None] = []
        self._tls = tls is not None
        self._server = ThreadingHTTPServer((host, port), self._handler())
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def attempts(self) -> int:
        return len(self.tries)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, user: str, host: str | None = None) -> str:
        """The hook of ``user``, reached by ``host`` (a name or an address; ours by default)."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{host or self.host}:{self.port}/hook/{user}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if receiver.block:  # hold before the body is read: nothing is taken
                    receiver.blocked.set()
                    receiver.release.wait(60)
                    receiver.block = False
                    self.send_error(503)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path.endswith("/moved"):  # a redirect must not count as delivered
                    self.send_response(303)
                    self.send_header("Location", self.path.replace("/moved", "/alice"))
                    self.end_headers()
                    return
                self.send_response(receiver.judge(self.path, self.headers, body))
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def judge(self, path: str, headers: Message, body: bytes) -> int:
        """The answer to one try (headers looked up case-insensitively, as HTTP wants)."""
        user = path.rsplit("/", 1)[-1]
        delivery = {
            "user": user,
            "delivery": headers.get(webhook.DELIVERY_HEADER),
            "host": headers.get("Host"),
            "proxy_authorization": headers.get("Proxy-Authorization"),
            "body": json.loads(body),
        }
        with self._lock:
            self.tries.append(delivery)
            if self.fail_first > 0:
                self.fail_first -= 1
                return 500
            timestamp = headers.get(webhook.TIMESTAMP_HEADER, "")
            supplied = headers.get(webhook.SIGNATURE_HEADER, "")
            if not webhook.verify(self.secrets.get(user, ""), timestamp, body, supplied):
                return 401
            self.accepted.append(delivery)
        return 200

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


class ForwardProxy:
    """A forward HTTP proxy on 127.0.0.1, as an operator's would be: ``CONNECT host:port``
    tunnels (https) and absolute-form requests (http), each connected by the proxy itself.

    ``requests`` has every request line's method and target as received; ``names`` is the
    proxy's own DNS (a name not in it is resolved by the system); ``refuse`` answers every
    request 403 without connecting anywhere. ``credentials`` (user, password): a request
    without them in ``Proxy-Authorization: Basic`` is answered 407; ``authorizations`` has
    every such header received, decoded (None: none sent). Like a real proxy it strips the
    header from what it forwards. ``tls``: the proxy is reached over TLS (an https proxy).
    """

    def __init__(
        self,
        names: dict[str, str] | None = None,
        refuse: bool = False,
        credentials: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.names = names or {}
        self.refuse = refuse
        self.credentials = credentials
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def url_with(self, userinfo: str) -> str:
        """The proxy's URL with ``userinfo`` (as written in an option: percent-encoded)."""
        return self.url.replace("://", f"://{userinfo}@", 1)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _authorized(self, head: list[bytes]) -> bool:
        found = None
        for line in head[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "proxy-authorization":
                kind, _, encoded = value.strip().partition(" ")
                found = base64.b64decode(encoded).decode() if kind == "Basic" else value.strip()
        self.authorizations.append(found)
        return self.credentials is None or found == ":".join(self.credentials)

    def _serve(self, plain: socket.socket) -> None:
        try:
            client = plain if self._tls is None else self._tls.wrap_socket(plain, server_side=True)
        except (OSError, ssl.SSLError):
            plain.close()
            return
        with client:
            reader = client.makefile("rb", buffering=0)
            head = [reader.readline(8192)]
            while head[-1] not in (b"\r\n", b"\n", b""):
                head.append(reader.readline(8192))
            method, target, version = head[0].decode("latin-1").split()
            self.requests.append((method, target))
            if self.refuse:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            if not self._authorized(head):
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
                )
                return
            parts = urlsplit(target if method != "CONNECT" else f"//{target}")
            try:
                upstream = self._connect(parts.netloc if parts.port else f"{parts.netloc}:80")
            except OSError:  # as a proxy says it: its upstream cannot be reached
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:  # absolute form: the origin gets the path only, not the proxy's credentials
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                kept = [h for h in head[1:] if not h.lower().startswith(b"proxy-authorization:")]
                upstream.sendall(f"{method} {path} {version}\r\n".encode() + b"".join(kept))
            with upstream:
                self._pipe(client, upstream)

    def _connect(self, authority: str) -> socket.socket:
        host, port = authority.rsplit(":", 1)
        host = host.strip("[]")
        return socket.create_connection((self.names.get(host, host), int(port)), timeout=30)

    @staticmethod
    def _pipe(one: socket.socket, other: socket.socket) -> None:
        """Bytes both ways until either side closes: one thread, as a TLS socket (an https
        proxy's client) may not be read and written by two threads at once."""
        with selectors.DefaultSelector() as selector:
            selector.register(one, selectors.EVENT_READ, other)
            selector.register(other, selectors.EVENT_READ, one)
            while events := selector.select(60):
                for key, _ in events:
                    source = key.fileobj
                    assert isinstance(source, socket.socket)
                    try:
                        data = source.recv(65536)
                        while isinstance(source, ssl.SSLSocket) and source.pending():
                            data += source.recv(source.pending())
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
