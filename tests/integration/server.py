"""Start LWR as a user would (``paster serve server.ini`` in its own directory) for tests."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_server_ini(
    directory: Path,
    port: int,
    app_options: dict[str, str] | None = None,
    server_options: dict[str, str] | None = None,
) -> Path:
    """server.ini from the shipped sample, with the port and extra options filled in."""
    text = (REPO / "server.ini.sample").read_text()
    text = text.replace("port = 8913", f"port = {port}")
    server = dict(server_options or {})
    for name in ("threads", "timeout"):  # the sample sets these: replace them in place
        if name in server:
            pattern = rf"^{name} = .*$"
            text = re.sub(pattern, f"{name} = {server.pop(name)}", text, count=1, flags=re.M)
    extra_server = "".join(f"{k} = {v}\n" for k, v in server.items())
    text = re.sub(r"^timeout = .*\n", lambda m: m[0] + extra_server, text, count=1, flags=re.M)
    extra = "".join(f"{k} = {v}\n" for k, v in (app_options or {}).items())
    text = text.replace("use = egg:lwr\n", "use = egg:lwr\n" + extra)
    text = text.replace(
        "[logger_access]\n# INFO logs one line per request (the private token is always "
        "redacted).\nlevel = WARNING",
        "[logger_access]\nlevel = INFO",
    )
    path = directory / "server.ini"
    path.write_text(text)
    return path


class LwrServer:
    """One LWR server process in ``directory``; restartable, killable."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        scheme: str = "http",
        env: dict[str, str] | None = None,
        wrapper: list[str] | None = None,
    ) -> None:
        self.env = env
        #: argv the server command is appended to (e.g. ``unshare ...``: a namespace of its own)
        self.wrapper = wrapper or []
        self.directory = directory
        self.port = port or free_port()
        self.scheme = scheme
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "server.log"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> LwrServer:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [*self.wrapper, str(BIN / "paster"), "serve", "server.ini"],
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.env,
        )
        log.close()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"LWR exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.get("healthz")[0] == 200:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"LWR did not become healthy in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill9(self) -> None:
        """SIGKILL the server process alone (its jobs run on in their own sessions)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """A raw HTTP request; returns (status, decoded JSON body or raw bytes)."""
        from urllib.parse import urlencode

        url = self.url + path.lstrip("/")
        if params:
            url += "?" + urlencode(params)
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30, context=_unverified()) as resp:
                status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, data, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
        if "json" in ctype:
            return status, json.loads(data)
        return status, data

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        return self.request("GET", path, params)


def _unverified() -> Any:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
