"""LWR's own HTTP(S) server runner: ``use = egg:lwr#main`` in ``[server:main]``.

Paste's bundled server cannot serve HTTPS on a current Python stack (its TLS code imports a module
pyOpenSSL removed), and it is slow for large bodies, so LWR ships a runner on cheroot — a threaded,
pure-Python WSGI server with TLS from the standard ``ssl`` module — that works the same on Linux and
Windows. ``ssl_pem`` may name a PEM holding certificate and key, or be ``*`` for a self-signed one
generated at start-up.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import socket
import tempfile
import threading
from typing import Any

from cheroot import wsgi

from lwr.errors import ConfigurationError
from lwr.pool.group import pool_of
from lwr.web.framing import LwrConnection
from lwr.web.front import HeaderGate
from lwr.web.sendfile import SendfileGateway

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8913


#: ``[server:main]`` options beyond host/port/threads/ssl_pem: (name, default), all seconds or
#: bytes per second; see docs/configuration.md ("Slow and idle clients").
DEADLINE_DEFAULTS = {
    "timeout": 60.0,
    "header_timeout": 10.0,
    "body_timeout": 60.0,
    "body_min_rate": 10240.0,
    "send_timeout": 60.0,
    "send_min_rate": 10240.0,
}


class LwrServer(wsgi.Server):
    """cheroot's WSGI server with LWR's header gate (:mod:`lwr.web.front`), body deadlines and
    response deadlines (:mod:`lwr.web.send_deadline`)."""

    header_timeout = DEADLINE_DEFAULTS["header_timeout"]
    body_timeout = DEADLINE_DEFAULTS["body_timeout"]
    body_min_rate = DEADLINE_DEFAULTS["body_min_rate"]
    send_timeout = DEADLINE_DEFAULTS["send_timeout"]
    send_min_rate = DEADLINE_DEFAULTS["send_min_rate"]
    _connections: Any

    def prepare(self) -> None:
        """cheroot's prepare(), then swap its connection manager for the header gate."""
        super().prepare()
        if self.ready:
            self._connections.close()
            self._connections = HeaderGate(self, self.header_timeout)


def build_server(
    app: Any,
    host: str = DEFAULT_HOST,
    port: int | str = DEFAULT_PORT,
    threads: int | str = 16,
    ssl_pem: str | None = None,
    **deadlines: Any,
) -> wsgi.Server:
    """A ready-to-start server for ``app``, with TLS when ``ssl_pem`` is given."""
    values = {**DEADLINE_DEFAULTS}
    for name, raw in deadlines.items():
        if name not in values:
            raise ConfigurationError(f"unknown [server:main] option {name!r}")
        try:
            values[name] = float(raw)
        except (TypeError, ValueError):
            message = f"[server:main] {name} must be a number, not {raw!r}"
            raise ConfigurationError(message) from None
        if values[name] <= 0:
            raise ConfigurationError(f"[server:main] {name} must be positive, not {raw!r}")
    server = LwrServer(
        (host, int(port)),
        app,
        numthreads=int(threads),
        timeout=max(1, round(values["timeout"])),
        server_name="lwr",
        # cheroot's default accept backlog of 5 drops connection bursts (retried by the client
        # a second later); waiting connections now cost no thread, so let the kernel queue more
        request_queue_size=socket.SOMAXCONN,
    )
    server.header_timeout = values["header_timeout"]
    server.body_timeout = values["body_timeout"]
    server.body_min_rate = values["body_min_rate"]
    server.send_timeout = values["send_timeout"]
    server.send_min_rate = values["send_min_rate"]
    server.gateway = SendfileGateway
    server.ConnectionClass = LwrConnection  # strict framing, JSON refusals (lwr.web.framing)
    if ssl_pem:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        pem = generate_self_signed() if ssl_pem.strip() == "*" else ssl_pem
        if not os.path.isfile(pem):
            raise ConfigurationError(f"ssl_pem {pem!r} does not exist")
        server.ssl_adapter = BuiltinSSLAdapter(pem, pem)
    return server


def server_runner(wsgi_app: Any, global_conf: dict[str, Any], **options: Any) -> None:
    """PasteDeploy ``paste.server_runner``: serve until SIGTERM/SIGINT.

    ``ssl_pem`` may be given here or in the ``[app:main]`` section (the app exposes its config).
    """
    known = {"host", "port", "threads", "ssl_pem", *DEADLINE_DEFAULTS}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigurationError(f"unknown [server:main] option(s): {', '.join(unknown)}")
    if not options.get("ssl_pem"):
        app_config = getattr(wsgi_app, "lwr_config", None)
        if app_config is not None and app_config.ssl_pem:
            options["ssl_pem"] = app_config.ssl_pem
    server = build_server(wsgi_app, **options)
    serve_forever(server)


def serve_forever(server: wsgi.Server) -> None:
    """Run ``server`` in this thread; SIGTERM and SIGINT stop it cleanly."""
    if threading.current_thread() is threading.main_thread():
        pool = pool_of(server.wsgi_app)

        def _stop(signum: int, _frame: Any) -> None:
            if pool is not None and signum == signal.SIGTERM:
                log.info("SIGTERM received: draining this pool worker before exiting")
                pool.drain()
                return
            log.info("signal %d received, stopping", signum)
            threading.Thread(target=server.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    watch_pool(server)
    scheme = "https" if server.ssl_adapter else "http"
    host, port = server.bind_addr[:2]
    log.info("serving on %s://%s:%s", scheme, host, port)
    print(f"serving on {scheme}://{host}:{port}", flush=True)
    try:
        server.safe_start()
    finally:
        server.stop()


def watch_pool(server: wsgi.Server) -> None:
    """A pool worker's server stops once the worker drained (SIGTERM or a drain command)."""
    pool = pool_of(server.wsgi_app)
    if pool is None:
        return

    def _watch() -> None:
        pool.finished.wait()
        log.info("pool worker drained; stopping the server")
        server.stop()

    threading.Thread(target=_watch, name="lwr-pool-watch", daemon=True).start()


def generate_self_signed(hostname: str = "localhost") -> str:
    """Write a fresh self-signed certificate and key to a private temp file; return its path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd, path = tempfile.mkstemp(prefix="lwr-selfsigned-", suffix=".pem")
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    log.warning("ssl_pem = *: serving HTTPS with a generated self-signed certificate (%s)", path)
    return path
