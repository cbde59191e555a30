"""Helpers of the TES tests: an HTTP file store, and the TES 1.1 OpenAPI check of every answer.

:class:`HttpStore` is a plain HTTP server over a directory: ``GET`` serves a file, ``PUT`` writes
the raw body (the way TES ``http(s)`` outputs are uploaded). :class:`TesSchema` validates an HTTP
exchange against the GA4GH document vendored in ``tests/data/tes`` (openapi-core), with its
reference to the GA4GH service-info schema pointed at the vendored copy (no network here).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from tests.integration.server import BIN

if TYPE_CHECKING:
    import tes

    from tests.integration.conftest import ServerFactory
    from tests.integration.server import LwrServer

#: the admin token of :func:`service_server`'s servers
SERVICE_ADMIN = "admin-token"

REPO = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO / "tests" / "data" / "tes"
_SERVICE_INFO_URL = (
    "https://raw.githubusercontent.com/ga4gh-discovery/ga4gh-service-info/v1.0.0/service-info.yaml"
)


def _minimal(url: str) -> bool:
    """Whether a GET of a task or a listing asks for the MINIMAL view (the default)."""
    parts = urlsplit(url)
    if not re.search(r"/tasks(/[^/:]+)?$", parts.path):
        return False
    return "view=" not in parts.query or "view=MINIMAL" in parts.query


class HttpStore:
    """An HTTP server over ``root`` (GET reads, PUT writes); ``url(name)`` names a file in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.puts: list[str] = []
        #: a GET of one of these paths waits until its event is set (see :meth:`hold`)
        self.held: dict[str, threading.Event] = {}
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _path(self) -> Path:
                return store.root / unquote(urlsplit(self.path).path).lstrip("/")

            def do_GET(self) -> None:
                gate = store.held.get(urlsplit(self.path).path.lstrip("/"))
                if gate is not None:
                    gate.wait(60)
                path = self._path()
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                path = self._path()
                length = int(self.headers.get("Content-Length") or 0)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.rfile.read(length))
                store.puts.append(urlsplit(self.path).path)
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpStore:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def hold(self, name: str) -> threading.Event:
        """Make GETs of ``name`` wait until the returned event is set."""
        gate = self.held[name] = threading.Event()
        return gate

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{name}"


class TesSchema:
    """Validates requests/responses of the TES routes against the TES 1.1.0 OpenAPI document."""

    def __init__(self) -> None:
        from openapi_core import OpenAPI

        self._dir = Path(tempfile.mkdtemp(prefix="lwr-tes-spec-"))
        text = (SPEC_DIR / "task_execution_service.openapi.yaml").read_text()
        (self._dir / "tes.yaml").write_text(text.replace(_SERVICE_INFO_URL, "service-info.yaml"))
        shutil.copy(SPEC_DIR / "service-info.yaml", self._dir / "service-info.yaml")
        self.api = OpenAPI.from_file_path(str(self._dir / "tes.yaml"))
        self.checked = 0

    def check(self, response: Any) -> None:
        """Validate one ``requests`` response (2xx only: the document describes no errors)."""
        from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

        if not 200 <= response.status_code < 300:
            return
        request = response.request
        if request.method == "GET" and _minimal(request.url):
            self._check_minimal(response.json())
            return
        # the document's server is the relative /ga4gh/tes/v1: a named manager's prefix and the
        # host are not part of what it describes
        request.url = re.sub(
            r"^https?://[^/]+(/managers/[^/]+)?", "http://tes.test", request.url
        ).replace("%3A", ":")  # the server decodes the path; so does the document's template
        self.api.validate_response(
            RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response)
        )
        self.checked += 1

    def _check_minimal(self, body: dict[str, Any]) -> None:
        """The MINIMAL view: the spec says ONLY ``id`` and ``state``, while its schema of tesTask
        requires ``executors`` (a contradiction inside TES 1.1.0); the view's words are followed
        and checked here, field by field, against the document's own state enumeration."""
        states = self.api.spec / "components" / "schemas" / "tesState" / "enum"
        tasks = body["tasks"] if "tasks" in body else [body]
        for task in tasks:
            assert set(task) == {"id", "state"}, task
            assert isinstance(task["id"], str) and task["state"] in list(states.read_value())
        self.checked += 1

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def lwr_users(directory: Path, *args: str) -> dict[str, Any]:
    """``lwr users --json ARGS`` run as an operator runs it, in the server's directory."""
    done = subprocess.run(
        [str(BIN / "lwr"), "users", "--json", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def service_server(
    factory: ServerFactory, managers_ini: str, env: dict[str, str], **options: str
) -> tuple[LwrServer, str]:
    """A TES server with the admin token :data:`SERVICE_ADMIN`, a ``free`` plan and one service
    user, alice, added as an operator adds her before the start; returns it started, and her token.
    """
    server = factory(
        app_options={"private_token": SERVICE_ADMIN, "plans": "plans.yml", **options},
        managers_ini=managers_ini,
        start=False,
        env=env,
    )
    (server.directory / "plans.yml").write_text("free: {max_running_jobs: 4}\n")
    token = str(lwr_users(server.directory, "add", "alice", "--plan", "free")["token"])
    return server.start(), token


def run_task(server: LwrServer, token: str, made: tes.Task, timeout: float = 90) -> tes.Task:
    """Create ``made`` with py-tes as ``token``, wait for its end, return its full view."""
    import tes

    client = tes.HTTPClient(server.url.rstrip("/"), token=token, timeout=30)
    task_id = client.create_task(made)
    client.wait(task_id, timeout=timeout)
    return client.get_task(task_id, view="FULL")
