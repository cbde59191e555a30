"""The client's own ceiling: ``pulsar.client``'s curl transport against a trivial static server.

How fast can Galaxy's client move a file at all on this machine? The same transport object
(``PycurlTransport.execute``, what ``put_file`` and ``fetch_output`` call) is pointed at a
static file server: nginx when it is installed (``sendfile`` for downloads, its WebDAV ``PUT``
writing uploads to a file; ``apt-get install nginx-light``), else Python's ``http.server`` with a
``PUT`` handler. The one difference on the wire is the upload's method (``PUT`` instead of the
protocol's ``POST``): the client reads the file through the same ``READFUNCTION`` either way.
LWR's staging with that transport is then reported as a fraction of this ceiling, per direction.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.measure import MIB, Settle, sha256
from tests.integration.server import free_port

_NGINX_CONF = """\
master_process off;  # one process, as the invoking user (no switch to nobody)
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_max_body_size 0;
    client_body_buffer_size 1m;
    client_body_temp_path {root}/body;
    server {{
        listen 127.0.0.1:{port};
        root {root}/files;
        location / {{ dav_methods PUT; create_full_put_path on; }}
    }}
}}
"""


#: where Debian puts nginx (``/usr/sbin`` is not on every user's PATH)
_NGINX_PATHS: tuple[str, ...] = ("/usr/sbin/nginx",)


@contextlib.contextmanager
def static_server(root: Path) -> Iterator[tuple[str, str]]:
    """A static file server for ``root/files``: yields (base URL, what it is)."""
    (root / "files").mkdir(parents=True, exist_ok=True)
    nginx = shutil.which("nginx") or next((p for p in _NGINX_PATHS if Path(p).exists()), None)
    with contextlib.ExitStack() as stack:
        reason = "no nginx on this host"
        if nginx:
            try:
                url = stack.enter_context(_nginx(nginx, root))
            except (OSError, RuntimeError) as exc:
                reason = f"nginx did not start: {exc}"
            else:
                yield url, f"nginx ({_nginx_version(nginx)}, sendfile on, WebDAV PUT)"
                return
        url = stack.enter_context(_python_server(root / "files"))
        yield url, f"Python http.server ({reason})"


@contextlib.contextmanager
def _nginx(nginx: str, root: Path) -> Iterator[str]:
    port = free_port()
    (root / "body").mkdir(exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(root=root, port=port))
    process = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(10)


def _nginx_version(nginx: str) -> str:
    result = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    return (result.stderr or result.stdout).strip().rpartition(" ")[2]


class _PutHandler(http.server.SimpleHTTPRequestHandler):
    """GET from the directory; PUT stores the body under the path, 1 MiB at a time."""

    def do_PUT(self) -> None:
        target = Path(self.translate_path(self.path))
        left = int(self.headers.get("Content-Length", "0"))
        with open(target, "wb") as out:
            while left > 0:
                chunk = self.rfile.read(min(left, MIB))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextlib.contextmanager
def _python_server(directory: Path) -> Iterator[str]:
    def handler(*args: Any) -> _PutHandler:
        return _PutHandler(*args, directory=str(directory))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.02)
    raise RuntimeError("nginx did not listen in time")


def transfer_once(
    url: str, root: Path, source: Path, digest: str, settle: Settle
) -> tuple[float, float]:
    """Seconds of one upload of ``source`` and one download of the same bytes, with the curl
    transport of ``pulsar.client``; prepared before each as the servers' transfers are."""
    from pulsar.client.transport.curl import PycurlTransport

    transport = PycurlTransport()
    name = "ceiling.dat"
    settle(source)
    started = time.perf_counter()
    transport.execute(url + name, method="PUT", input_path=str(source))
    up = time.perf_counter() - started
    stored = root / "files" / name
    if stored.stat().st_size != source.stat().st_size:
        raise RuntimeError("the static server stored a different size")
    destination = settle.scratch / "ceiling_down.dat"
    settle(stored)
    started = time.perf_counter()
    transport.execute(url + name, output_path=str(destination))
    down = time.perf_counter() - started
    try:
        if sha256(destination) != digest:
            raise RuntimeError("the download from the static server differs from the input")
    finally:
        destination.unlink(missing_ok=True)
        stored.unlink(missing_ok=True)
    return up, down
