"""Request framing that leaves no room for smuggling, and cheroot's own refusals in JSON.

cheroot keeps the *last* of two ``Content-Length`` headers and, when ``Transfer-Encoding:
chunked`` comes with a ``Content-Length``, silently reads the chunks. A proxy in front that reads
the other one frames the stream differently: the bytes it forwards as one request's body reach
LWR as the start of another request (request smuggling). The only place that still sees every
header line is cheroot's header reader, so the check lives there: such a request is refused with
400 and the connection closed, before the application is called.

cheroot answers a request it cannot parse itself (this one, a malformed ``Content-Length``, a bad
request line) with a text/plain ``simple_response``; :class:`LwrRequest` answers those with the
same ``{"error": ...}`` JSON body as every other refusal, and always closes the connection after
them (cheroot does too: nothing after an unparsable request can be trusted).
"""

from __future__ import annotations

import json
from typing import Any

from cheroot import errors
from cheroot.makefile import MakeFile
from cheroot.server import HeaderReader, HTTPConnection, HTTPRequest

from lwr.web.send_deadline import BudgetedWriter, ResponseBudget

_LENGTH = b"Content-Length"
_ENCODING = b"Transfer-Encoding"


class _RecordingHeaders(dict[bytes, bytes]):
    """A header dict that remembers every ``Content-Length`` value set, not only the last."""

    def __init__(self) -> None:
        super().__init__()
        self.lengths: list[bytes] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if key == _LENGTH:
            self.lengths.append(value)
        super().__setitem__(key, value)


def framing_problem(headers: dict[bytes, bytes], lengths: list[bytes]) -> str | None:
    """Why these headers frame the body ambiguously, or None if they do not."""
    if len(set(lengths)) > 1:
        return "conflicting Content-Length headers"
    if _ENCODING in headers and _LENGTH in headers:
        return "Content-Length together with Transfer-Encoding"
    return None


class StrictHeaderReader(HeaderReader):
    """cheroot's header reader, refusing ambiguous body framing (a ValueError is its 400)."""

    def __call__(self, rfile: Any, hdict: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
        seen = _RecordingHeaders()
        super().__call__(rfile, seen)
        problem = framing_problem(seen, seen.lengths)
        if problem:
            raise ValueError(f"ambiguous request framing: {problem}")
        if hdict is None:
            hdict = {}
        hdict.update(seen)
        return hdict


class LwrRequest(HTTPRequest):
    """cheroot's request with strict framing and JSON refusals."""

    header_reader = StrictHeaderReader()

    def respond(self) -> None:
        """cheroot's respond(), every byte of the response under a :class:`ResponseBudget`."""
        writer = self.conn.wfile
        if not isinstance(writer, BudgetedWriter):
            super().respond()
            return
        server = self.server
        writer.budget = ResponseBudget(
            getattr(server, "send_timeout", 60.0),
            getattr(server, "send_min_rate", 10240.0),
            server.timeout,
            self,
        )
        try:
            super().respond()
        finally:
            writer.budget = None
            sock = self.conn.socket
            if sock.fileno() >= 0:
                sock.settimeout(server.timeout)  # the budget's last wait bound, undone

    def send_headers(self) -> None:
        """Honour an application's ``Connection: close`` (cheroot would say it, then keep going).

        The application asks for it when the body it refused cannot be skipped reliably (a
        malformed chunk, a body that stopped arriving): see ``LwrError.close_connection``.
        """
        if any(
            key.lower() == b"connection" and value.strip().lower() == b"close"
            for key, value in self.outheaders
        ):
            self.close_connection = True
        super().send_headers()

    def simple_response(self, status: Any, msg: Any = "") -> None:
        """Answer ``status`` with ``{"error": msg}`` and close the connection afterwards."""
        status = str(status)
        if isinstance(msg, bytes):
            msg = msg.decode("latin-1")
        if status[:3] in ("413", "414") and self.response_protocol != "HTTP/1.1":
            status = "400 Bad Request"  # HTTP/1.0 has neither status
        body = json.dumps({"error": msg or status[4:]}).encode()
        self.close_connection = True
        head = (
            f"{self.server.protocol} {status}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Content-Type: application/json\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            self.conn.wfile.write(head.encode("latin-1") + body)
        except OSError as exc:
            if exc.args and exc.args[0] not in errors.socket_errors_to_ignore:
                raise


class LwrConnection(HTTPConnection):
    """A cheroot connection whose requests are :class:`LwrRequest`, written under a deadline.

    Its constructor sets what cheroot's does, less two costs every new connection paid there
    (cheroot 11 makes one per request from Galaxy's client, which opens a connection per
    request): a write stream built only to be replaced by the :class:`BudgetedWriter` (and
    closed again by the garbage collector), and ``lru_cache`` wrappers of the two peer-credential
    methods, which only UNIX-socket servers with ``peercreds_enabled`` use (those keep cheroot's
    constructor). Building a connection went from 28-31 to 14 microseconds of CPU (measured in a
    loop, 20,000 each, alternating). ``tests/unit/web/test_framing_connection.py`` checks that
    the attributes stay those cheroot's constructor sets.
    """

    RequestHandlerClass = LwrRequest

    def __init__(self, server: Any, sock: Any, makefile: Any = MakeFile) -> None:
        if server.peercreds_enabled:
            super().__init__(server, sock, makefile)
        else:
            self.server = server
            self.socket = sock
            self.rfile = makefile(sock, "rb", self.rbufsize)
            self.requests_seen = 0
            self.peercreds_enabled = False
            self.peercreds_resolve_enabled = server.peercreds_resolve_enabled
        self.wfile = BudgetedWriter(sock, "wb", self.wbufsize)
