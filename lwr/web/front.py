"""A header gate in front of cheroot's worker threads: slow or idle clients cost no thread.

cheroot (11.x) keeps *idle keep-alive* connections in a selector, but it hands every freshly
accepted connection straight to a worker thread, which then blocks reading the request line and
headers with a socket timeout that starts again on every byte. A few dozen clients trickling a
header line every few seconds therefore hold every worker, and ``/healthz`` and real clients wait
behind them. The same happens when a kept-alive connection sends the first byte of its next
request and then stalls.

:class:`HeaderGate` replaces cheroot's connection manager. It reads request headers itself,
non-blocking, in the selector thread, and gives a connection to a worker only once its headers are
complete (``\\r\\n\\r\\n`` seen); the bytes read so far are put back in front of cheroot's reader,
so cheroot parses the request as usual. Each waiting connection has a deadline that is not reset
by new bytes: ``header_timeout`` seconds from its first byte (or from accept), and the server's
``timeout`` while a kept-alive connection is idle. Headers over :data:`MAX_HEADER_BYTES` are
answered 431 and closed. A waiting connection costs a descriptor and a small buffer, no thread.
"""

from __future__ import annotations

import json
import logging
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from cheroot import connections

log = logging.getLogger(__name__)

#: Request line and headers larger than this are refused (431) and the connection closed.
MAX_HEADER_BYTES = 64 * 1024
_READ_SIZE = 16 * 1024
_END = b"\r\n\r\n"


def _json_answer(status: str, error: str) -> bytes:
    """A complete response with a JSON ``{"error": ...}`` body, as every refusal of LWR has."""
    body = json.dumps({"error": error}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_TIMEOUT_ANSWER = _json_answer(
    "408 Request Timeout", "the request's headers did not arrive in time (header_timeout)"
)
_TOO_LARGE_ANSWER = _json_answer(
    "431 Request Header Fields Too Large",
    f"the request line and headers exceed {MAX_HEADER_BYTES} bytes",
)


class HeaderGate(connections.ConnectionManager):
    """cheroot's ConnectionManager, waiting in the selector until a request's headers are in."""

    # cheroot's own internals this class builds on (its type stubs do not declare them)
    _selector: Any
    _stop_requested: bool
    _remove_invalid_sockets: Callable[[], None]
    _from_server_socket: Callable[[Any], Any]

    def __init__(self, server: Any, header_timeout: float) -> None:
        super().__init__(server)
        self.header_timeout = header_timeout

    def put(self, conn: Any) -> None:
        """A worker is done with ``conn`` (keep-alive): wait for its next request's headers."""
        conn.last_used = time.time()
        head = _take_buffered(conn.rfile)
        idle = not head
        self._wait(conn, head, self.server.timeout if idle else self.header_timeout, idle)

    def _wait(self, conn: Any, head: bytes, allowed: float, idle: bool) -> None:
        conn.lwr_head = bytearray(head)
        conn.lwr_idle = idle
        conn.lwr_deadline = time.monotonic() + allowed
        if _END in conn.lwr_head:
            self._hand_over(conn)
            return
        self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)

    def _run(self, expiration_interval: float) -> None:
        """The selector loop: accept, gather headers, hand complete requests to workers."""
        last_check = time.monotonic()
        while not self._stop_requested:
            try:
                active = self._selector.select(timeout=min(expiration_interval, 0.5))
            except OSError:
                self._remove_invalid_sockets()
                continue
            for sock_fd, conn in active:
                if conn is self.server:
                    self._accept()
                else:
                    self._readable(sock_fd, conn)
            now = time.monotonic()
            if now - last_check > expiration_interval:
                self._expire(now)
                last_check = now

    def _accept(self) -> None:
        context = getattr(self.server.ssl_adapter, "context", None)
        try:
            if isinstance(context, ssl.SSLContext):
                self._accept_tls(context)
                return
            conn = self._from_server_socket(self.server.socket)
        except OSError as exc:  # e.g. EMFILE: keep serving the connections we have
            log.warning("accept failed: %s", exc)
            time.sleep(0.05)
            return
        if conn is None:
            return
        if not hasattr(conn.rfile, "_read_buf"):  # a reader we cannot refill: cheroot's way
            self.server.process_conn(conn)
            return
        self._wait(conn, b"", self.header_timeout, idle=False)

    def _accept_tls(self, context: ssl.SSLContext) -> None:
        """Accept, and run the TLS handshake here step by step as records arrive.

        cheroot does the handshake blocking in the selector thread: one silent client would stall
        every accept for ``timeout`` seconds. The handshake counts against ``header_timeout``.
        """
        raw, addr = self.server.socket.accept()
        raw.setblocking(False)
        tls = context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        pending = _Handshake(tls, addr, time.monotonic() + self.header_timeout)
        self._selector.register(tls.fileno(), selectors.EVENT_READ, data=pending)

    def _handshake(self, sock_fd: int, pending: _Handshake) -> None:
        try:
            pending.socket.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:  # includes ssl.SSLError: a failed or abandoned handshake
            log.info("TLS handshake with %s failed: %s", pending.addr[0], exc)
            self._selector.unregister(sock_fd)
            pending.close()
            return
        self._selector.unregister(sock_fd)
        adapter = self.server.ssl_adapter
        conn = self.server.ConnectionClass(self.server, pending.socket, adapter.makefile)
        conn.remote_addr, conn.remote_port = pending.addr[:2]
        conn.ssl_env = adapter.get_environ(pending.socket)
        # headers may have come with the handshake's last records, buffered by OpenSSL already
        conn.lwr_head = bytearray()
        conn.lwr_idle = False
        conn.lwr_deadline = pending.lwr_deadline
        outcome = _read_available(conn, self.header_timeout)
        if outcome == "complete":
            self._hand_over(conn)
        elif outcome == "wait":
            self._selector.register(sock_fd, selectors.EVENT_READ, data=conn)
        else:
            _close(conn)

    def _readable(self, sock_fd: int, conn: Any) -> None:
        """Read what the client sent; hand over, refuse, or keep waiting."""
        if isinstance(conn, _Handshake):
            self._handshake(sock_fd, conn)
            return
        outcome = _read_available(conn, self.header_timeout)
        if outcome == "wait":
            return
        self._selector.unregister(sock_fd)
        if outcome == "complete":
            self._hand_over(conn)
        elif outcome == "too large":
            _answer_and_close(conn, _TOO_LARGE_ANSWER)
        else:
            _close(conn)

    def _hand_over(self, conn: Any) -> None:
        """Put the gathered bytes in front of cheroot's reader and queue the connection."""
        rfile = conn.rfile
        rfile._read_buf = bytes(conn.lwr_head) + _take_buffered(rfile)
        rfile._read_pos = 0
        conn.lwr_head = bytearray()
        if hasattr(conn.socket, "settimeout"):
            conn.socket.settimeout(self.server.timeout)
        self.server.process_conn(conn)

    def _expire(self, threshold: float) -> None:
        """Close waiting connections past their deadline (``threshold`` is ``monotonic()``)."""
        late = [
            (sock_fd, conn)
            for sock_fd, conn in self._selector.connections
            if conn is not self.server and conn.lwr_deadline < threshold
        ]
        for sock_fd, conn in late:
            self._selector.unregister(sock_fd)
            if conn.lwr_idle:
                _close(conn)
            else:
                log.info("closing %s: request headers not complete in time", _peer(conn))
                _answer_and_close(conn, _TIMEOUT_ANSWER)


class _Handshake:
    """A TLS connection whose handshake is still under way (no cheroot connection yet)."""

    lwr_idle = True  # past its deadline it is closed without an answer
    lwr_head = b""

    def __init__(self, sock: ssl.SSLSocket, addr: Any, deadline: float) -> None:
        self.socket = sock
        self.addr = addr if isinstance(addr, tuple) else ("?", 0)
        self.lwr_deadline = deadline

    def close(self) -> None:
        self.socket.close()


def _read_available(conn: Any, header_timeout: float) -> str:
    """Read without blocking: 'complete', 'wait', 'too large', or 'closed'."""
    sock = conn.socket
    sock.setblocking(False)
    try:
        while True:
            try:
                data = sock.recv(_READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return "wait"
            except OSError:
                return "closed"
            if not data:
                return "closed"
            if conn.lwr_idle:  # the first byte of a request starts its header deadline
                conn.lwr_idle = False
                conn.lwr_deadline = time.monotonic() + header_timeout
            start = max(0, len(conn.lwr_head) - len(_END) + 1)
            conn.lwr_head += data
            if conn.lwr_head.find(_END, start) >= 0:
                return "complete"
            if len(conn.lwr_head) > MAX_HEADER_BYTES:
                return "too large"
    finally:
        if hasattr(sock, "settimeout") and sock.fileno() >= 0:
            sock.settimeout(conn.server.timeout)


def _take_buffered(rfile: Any) -> bytes:
    """Bytes cheroot's reader has buffered but not yet consumed (a pipelined request)."""
    buf = getattr(rfile, "_read_buf", b"")
    pos = getattr(rfile, "_read_pos", 0)
    rest = bytes(buf[pos:])
    if hasattr(rfile, "_read_buf"):
        rfile._read_buf = b""
        rfile._read_pos = 0
    return rest


def _answer_and_close(conn: Any, answer: bytes) -> None:
    """Best-effort short answer (never blocks the selector thread), then close."""
    try:
        conn.socket.setblocking(False)
        if conn.lwr_head:
            conn.socket.send(answer)
    except OSError:
        pass
    _close(conn)


def _close(conn: Any) -> None:
    try:
        conn.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


def _peer(conn: Any) -> str:
    return f"{getattr(conn, 'remote_addr', '?')}:{getattr(conn, 'remote_port', '?')}"
