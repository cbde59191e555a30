"""Real receivers for notification tests: an SMTP server (aiosmtpd) and a webhook endpoint.

Both record only what they fully took (a mail after its DATA, a webhook after its body was read
and its signature verified), and both can be told to hold the sender mid-delivery (``block``)
so a test can kill the sending server at exactly that moment.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

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
