"""Galaxy 26.1's job files API with tus (for ``remote_transfer_tus`` tests), and a link that breaks.

:class:`TusFilesEndpoint` serves, on one port, what Galaxy serves for a job:

- ``/api/job_files/resumable_upload``: the tus server Galaxy 26.1 itself mounts there
  (``tuspyserver``'s FastAPI router, storing uploads in a directory);
- ``GET /api/jobs/{id}/files?path=…&job_key=…``: the file at ``path``;
- ``POST /api/jobs/{id}/files?path=…&job_key=…`` with the form field ``session_id``: moves the
  finished upload ``<upload directory>/<session_id>`` to ``path``, refusing ids that are not
  ``[\\w-]+``, as Galaxy's ``JobFilesAPIController.create`` does.

:class:`CuttingProxy` forwards TCP to it and, once, cuts the connection after a given number of
bytes went upstream: a dropped link in the middle of an upload. It counts every upstream byte, so
a test can tell how much of a file travelled twice.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from tuspyserver import create_tus_router


class TusFilesEndpoint:
    """The FastAPI app (tuspyserver + job files routes) under uvicorn in a background thread."""

    def __init__(self, upload_dir: Path, job_key: str = "k3y") -> None:
        self.upload_dir = upload_dir
        self.job_key = job_key
        self.posted: list[tuple[str, str]] = []  # (path, session_id) of each completed POST
        upload_dir.mkdir(parents=True, exist_ok=True)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(_app(self), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def files_url(self, port: int | None = None) -> str:
        """The job's files endpoint, as Galaxy hands it to the client (optionally via a proxy)."""
        return f"http://127.0.0.1:{port or self.port}/api/jobs/1/files?job_key={self.job_key}"

    def __enter__(self) -> TusFilesEndpoint:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()


def _app(endpoint: TusFilesEndpoint) -> Any:
    app = FastAPI()
    app.include_router(
        create_tus_router(
            prefix="api/job_files/resumable_upload", files_dir=str(endpoint.upload_dir)
        )
    )

    def authorized(request: Request) -> str:
        if request.query_params.get("job_key") != endpoint.job_key:
            raise HTTPException(403, "bad job_key")
        path = request.query_params.get("path") or ""
        if not os.path.isabs(path):
            raise HTTPException(400, "'path' parameter not provided or not absolute")
        return path

    @app.get("/api/jobs/{job_id}/files")
    def index(job_id: str, request: Request) -> Any:
        path = authorized(request)
        if not os.path.isfile(path):
            raise HTTPException(404, "no such file")
        return FileResponse(path)

    @app.post("/api/jobs/{job_id}/files")
    async def create(job_id: str, request: Request) -> Any:
        path = authorized(request)
        form = parse_qs((await request.body()).decode())
        session_id = (form.get("session_id") or [""])[0]
        if re.match(r"^[\w-]+$", session_id) is None:
            raise HTTPException(400, "Invalid session id format.")
        upload = endpoint.upload_dir / session_id
        if not upload.is_file():
            raise HTTPException(400, f"no upload {session_id}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.move(str(upload), path)
        endpoint.posted.append((path, session_id))
        return JSONResponse({"message": "ok"})

    return app


class CuttingProxy:
    """A TCP proxy that drops one connection after ``cut_after`` upstream bytes (once)."""

    def __init__(self, upstream_port: int, cut_after: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.upstream_bytes = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                continue
            for source, sink, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, upstream), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(64 * 1024):
                allowed, cut = self._take(len(data)) if upstream else (len(data), False)
                sink.sendall(data[:allowed])
                if cut:  # the link breaks: both ends see the connection die
                    for sock in (source, sink):
                        sock.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _take(self, count: int) -> tuple[int, bool]:
        """How many of ``count`` upstream bytes to forward, and whether to cut after them."""
        with self._lock:
            if self.cut_after is None or self.cuts or self.upstream_bytes + count < self.cut_after:
                self.upstream_bytes += count
                return count, False
            allowed = self.cut_after - self.upstream_bytes
            self.upstream_bytes += allowed
            self.cuts += 1
            return allowed, True

    def close(self) -> None:
        self._stopped = True
        self._listener.close()
