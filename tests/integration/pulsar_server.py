"""A real Pulsar 0.16 server for tests: our client must work against the peer too.

The server lives in its own virtualenv (``pip install 'pulsar-app[web]==0.16.0'``), built once and
cached under ``/var/tmp/lwr-test-pulsar-venv`` (``LWR_TEST_PULSAR_VENV`` overrides). A virtualenv
cannot be moved after it is built, so it is built in place and marked complete with a
``.lwr-ready`` file only when pip succeeded; a half-built one is removed and built again. A lock
file keeps two test processes from building it at once.

Each server is configured with ``pulsar-config --directory D`` and served with
``pulsar-serve D/server.ini`` (gunicorn) in its own process group, stopped with SIGTERM.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.integration.server import free_port

REQUIREMENT = "pulsar-app[web]==0.16.0"
VENV = Path(os.environ.get("LWR_TEST_PULSAR_VENV", "/var/tmp/lwr-test-pulsar-venv"))
READY = VENV / ".lwr-ready"


def ensure_venv(timeout: float = 900.0) -> tuple[Path | None, str]:
    """The virtualenv with Pulsar installed, building it if needed; (None, why) if impossible."""
    if READY.exists() and READY.read_text().strip() == REQUIREMENT:
        return VENV, ""
    try:
        VENV.parent.mkdir(parents=True, exist_ok=True)
        with open(str(VENV) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if READY.exists() and READY.read_text().strip() == REQUIREMENT:
                return VENV, ""
            shutil.rmtree(VENV, ignore_errors=True)
            steps = [
                [sys.executable, "-m", "venv", str(VENV)],
                [str(VENV / "bin" / "pip"), "install", "--quiet", REQUIREMENT],
            ]
            for argv in steps:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
                if done.returncode != 0:
                    shutil.rmtree(VENV, ignore_errors=True)
                    said = (done.stderr or done.stdout).strip()[-2000:]
                    return None, f"{' '.join(argv)} failed: {said}"
            READY.write_text(REQUIREMENT + "\n")
            return VENV, ""
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot build the Pulsar virtualenv in {VENV}: {exc}"


class PulsarServer:
    """One Pulsar server configured in ``directory`` and listening on a free local port."""

    def __init__(self, venv: Path, directory: Path, private_token: str | None = None) -> None:
        self.venv = venv
        self.directory = directory
        self.port = free_port()
        self.private_token = private_token
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "pulsar.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> PulsarServer:
        argv = [
            str(self.venv / "bin" / "pulsar-config"),
            "--directory",
            str(self.directory),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.private_token:
            argv += ["--private_token", self.private_token]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.venv / "bin" / "pulsar-serve"), str(self.directory / "server.ini")],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_listening(timeout)
        return self

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Pulsar exited with {self.process.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers (404 for the root): it is up
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"Pulsar did not start within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM the process group we started (gunicorn's master and its workers)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
