"""A stand-in for Galaxy's job files API, for tests of server-side staging.

In ``remote_transfer`` mode Galaxy's client gives the server a ``files_endpoint`` URL; the server
GETs every input from ``<endpoint>?path=<client path>&file_type=<type>`` and POSTs every output back
to the same kind of URL as multipart field ``file``. Galaxy answers with the file at that path and
writes uploads to it. This helper does exactly that against the local disk (client and server share
a machine in tests), in a background thread:

    with FilesEndpoint() as endpoint:
        run_check(server.url, default_file_action="remote_transfer",
                  files_endpoint=endpoint.url)
        assert ("GET", "input") in endpoint.kinds()

Faults can be queued per path to test retries and failures: ``endpoint.fail(path, 500, "drop")``
makes the next two requests for ``path`` answer HTTP 500 and then drop the connection mid-body
(``"short"`` announces more bytes than it sends, ``"hang"`` sends nothing for a while). A
``job_key`` may be required, like Galaxy's, to check that it is redacted from logs and errors.

Uploads are streamed to a temporary file and then cut out of the multipart envelope, so large files
are never held in memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Request:
    """One request the endpoint served: method, the ``path`` and ``file_type`` query values."""

    method: str
    path: str
    file_type: str
    status: int


class FilesEndpoint:
    """Galaxy's ``/api/jobs/{id}/files`` for tests: GET serves a local path, POST/PUT write one."""

    def __init__(self, host: str = "127.0.0.1", job_key: str | None = None) -> None:
        self.job_key = job_key
        self.requests: list[Request] = []
        self._faults: dict[str, deque[str | int]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        base = f"http://{host}:{port}/api/jobs/1/files"
        return f"{base}?job_key={self.job_key}" if self.job_key else base

    def start(self) -> FilesEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FilesEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, path: str | os.PathLike[str], *faults: str | int) -> None:
        """Queue faults for the next requests naming ``path``: an HTTP status or a named fault."""
        with self._lock:
            self._faults[os.fspath(path)].extend(faults)

    def kinds(self) -> set[tuple[str, str]]:
        """The (method, file_type) pairs served successfully."""
        return {(r.method, r.file_type) for r in self.requests if r.status < 300}

    def served(self, method: str) -> list[str]:
        """Paths successfully served with ``method``."""
        return [r.path for r in self.requests if r.method == method and r.status < 300]

    def _next_fault(self, path: str) -> str | int | None:
        with self._lock:
            queue = self._faults.get(path)
            return queue.popleft() if queue else None

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _handler_for(endpoint: FilesEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.endpoint = endpoint
    return Handler


class _Handler(BaseHTTPRequestHandler):
    endpoint: FilesEndpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- dispatch ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        query = parse_qs(urlsplit(self.path).query)
        path = (query.get("path") or [""])[0]
        file_type = (query.get("file_type") or [""])[0]
        key = self.endpoint.job_key
        if key is not None and (query.get("job_key") or [""])[0] != key:
            return self._answer(method, path, file_type, 403, b"bad job_key")
        if not path or not os.path.isabs(path):
            return self._answer(method, path, file_type, 400, b"path must be absolute")
        fault = self.endpoint._next_fault(path)
        if isinstance(fault, int):
            self._drain()
            return self._answer(method, path, file_type, fault, b"injected failure")
        if method == "GET":
            self._get(path, file_type, fault)
        else:
            self._receive(method, path, file_type, fault)

    def _answer(self, method: str, path: str, file_type: str, status: int, body: bytes) -> None:
        self.endpoint._record(Request(method, path, file_type, status))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drain(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)

    # -- GET ------------------------------------------------------------------------------

    def _get(self, path: str, file_type: str, fault: str | int | None) -> None:
        if not os.path.isfile(path):
            return self._answer("GET", path, file_type, 404, b"no such file")
        size = os.path.getsize(path)
        if fault == "hang":
            time.sleep(5)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        announced = size + 10 if fault == "short" else size
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        with open(path, "rb") as handle:
            if fault in ("drop", "short"):
                self.wfile.write(handle.read(size // 2) if fault == "drop" else handle.read())
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                self.endpoint._record(Request("GET", path, file_type, 599))
                return
            shutil.copyfileobj(handle, self.wfile, CHUNK)
        self.endpoint._record(Request("GET", path, file_type, 200))

    # -- POST / PUT ---------------------------------------------------------------------------

    def _receive(self, method: str, path: str, file_type: str, fault: str | int | None) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            self.endpoint._record(Request(method, path, file_type, 599))
            return
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile() as body:
            received = _copy_exactly(self.rfile, body, length)
            if received != length:
                return self._answer(method, path, file_type, 400, b"short body")
            if method == "PUT":
                start, end = 0, length
            else:
                ctype = self.headers.get("Content-Type", "")
                found = _multipart_file_range(body, ctype, length)
                if found is None:
                    return self._answer(method, path, file_type, 400, b"no multipart 'file'")
                start, end = found
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".files-endpoint-")
            with os.fdopen(fd, "wb") as out:
                body.seek(start)
                _copy_exactly(body, out, end - start)
            os.replace(tmp, path)
        self._answer(method, path, file_type, 200, b'{"message": "ok"}')


def _copy_exactly(source: Any, target: Any, count: int) -> int:
    done = 0
    while done < count:
        chunk = source.read(min(CHUNK, count - done))
        if not chunk:
            break
        target.write(chunk)
        done += len(chunk)
    return done


def _multipart_file_range(body: Any, content_type: str, length: int) -> tuple[int, int] | None:
    """Byte range of the ``file`` part's content in a single-part multipart body on disk."""
    params = dict(_params(content_type.split(";")[1:]))
    boundary = params.get("boundary", "").strip('"').encode()
    if not boundary:
        return None
    body.seek(0)
    head = body.read(min(length, 64 * 1024))
    header_end = head.find(b"\r\n\r\n")
    if not head.startswith(b"--" + boundary) or header_end < 0:
        return None
    if b'name="file"' not in head[:header_end]:
        return None
    tail_size = min(length, 4096)
    body.seek(length - tail_size)
    tail = body.read(tail_size)
    closing = tail.rfind(b"\r\n--" + boundary + b"--")
    if closing < 0:
        return None
    return header_end + 4, length - tail_size + closing


def _params(items: Iterable[str]) -> Iterable[tuple[str, str]]:
    for item in items:
        key, _, value = item.strip().partition("=")
        yield key.lower(), value


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy (and return it); fail on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def final_status(client: Any, timeout: float = 90.0) -> dict[str, Any]:
    """The status of a ``pulsar.client`` job once it is complete (polled; fail on timeout)."""

    def complete() -> dict[str, Any] | None:
        status: dict[str, Any] = client.raw_check_complete()
        return status if status.get("complete") == "true" else None

    result: dict[str, Any] = wait_for(complete, timeout, "the job to finish")
    return result


__all__ = ["FilesEndpoint", "Request", "final_status", "wait_for"]
