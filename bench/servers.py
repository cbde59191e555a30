"""The two servers under test, started as their users start them, behind one small interface.

LWR is configured from our shipped samples and served with ``paster serve server.ini`` exactly as
``tests/integration/server.py`` does; Pulsar 0.16 lives in its own virtualenv (its dependencies
must not leak into LWR's) and is configured with ``pulsar-config`` and served with
``pulsar-serve``. Both get the same manager settings: a queued local manager running
``concurrency`` jobs at once, application logging at INFO and no access log.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import psutil

from tests.integration.server import free_port, write_server_ini

BENCH_DIR = Path(__file__).resolve().parent
PULSAR_VENV = BENCH_DIR / ".venvs" / "pulsar"
# The amqp extra (kombu) is for the message-queue comparison; the web one serves HTTP.
PULSAR_REQUIREMENT = "pulsar-app[web,amqp]==0.16.0"
#: written after a successful install, so a half-finished one is redone rather than trusted
_PULSAR_MARKER = PULSAR_VENV / ".bench-installed"
_POLL = 0.01


class BenchServer(ABC):
    """One server process: start, stop, restart, and what it costs in memory."""

    name: str

    def __init__(
        self, directory: Path, concurrency: int, extra: dict[str, str] | None = None
    ) -> None:
        self.directory = directory
        self.concurrency = concurrency
        #: extra application options (LWR's [app:main], Pulsar's app.yml), e.g. the MQ URL
        self.extra = dict(extra or {})
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        #: request threads; None keeps the server's own default (LWR's sample 16, Pulsar's 4)
        self.threads: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @abstractmethod
    def configure(self) -> None:
        """Write the server's configuration into ``directory`` (once, before the first start)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The argv that serves the configured directory in the foreground."""

    def start(self, timeout: float = 120.0) -> float:
        """Start the server; return seconds from process start until ``/healthz`` answers 200."""
        with open(self.log_path, "ab") as log:
            started = time.monotonic()
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy(timeout)
        return time.monotonic() - started

    def _wait_healthy(self, timeout: float) -> None:
        """Poll ``/healthz`` every 10 ms: finer than the test helper's 100 ms, as we time it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"{self.name} exited with {code}:\n{self.log()}")
            if _healthz(self.port):
                return
            time.sleep(_POLL)
        raise RuntimeError(f"{self.name} did not answer /healthz in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM the server (and, failing that, SIGKILL its session, which we created)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self) -> float:
        """Stop, then start again; the restart time is that of the start."""
        self.stop()
        return self.start()

    def rss_bytes(self) -> int:
        """Resident memory of the server and every process it forked (gunicorn's worker)."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def versions(self) -> dict[str, str]:
        return {}


class LwrBench(BenchServer):
    """LWR from ``server.ini.sample`` and a ``queued_python`` manager."""

    name = "lwr"
    #: write lwr.trace's DEBUG lines (python -m bench --trace): a line per step of every job
    trace = False

    def configure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ini = write_server_ini(self.directory, self.port, self.extra)
        # The test helper turns the access log on (tests read it); a user's server has it off,
        # and one log line per request is a cost Pulsar does not pay either.
        text = ini.read_text()
        if self.threads:
            text = _set_option(text, "server:main", "threads", str(self.threads))
        quiet = text.replace("[logger_access]\nlevel = INFO", "[logger_access]\nlevel = WARNING")
        if quiet == text:
            raise RuntimeError("could not turn LWR's access log off in the generated server.ini")
        if self.trace:
            quiet = _set_option(quiet, "logger_trace", "level", "DEBUG")
        ini.write_text(quiet)
        (self.directory / "job_managers.ini").write_text(
            f"[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = {self.concurrency}\n"
        )

    def command(self) -> list[str]:
        """The argv of ``tests.integration.server.LwrServer.start``; we time the start ourselves."""
        return [str(Path(sys.executable).parent / "paster"), "serve", "server.ini"]

    def versions(self) -> dict[str, str]:
        from lwr import __version__

        return {"lwr": __version__, "server": "cheroot (egg:lwr#main)"}


class PulsarBench(BenchServer):
    """Pulsar 0.16 from ``pulsar-config --directory D``, served by ``pulsar-serve`` (gunicorn)."""

    name = "pulsar"

    def configure(self) -> None:
        ensure_pulsar()
        self.directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(PULSAR_VENV / "bin" / "pulsar-config"),
                "--directory",
                str(self.directory),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            check=True,
            capture_output=True,
        )
        app_yml = self.directory / "app.yml"
        app_yml.write_text(
            app_yml.read_text()
            + f"staging_directory: {self.directory / 'files' / 'staging'}\n"
            + f"persistence_directory: {self.directory / 'files' / 'persisted_data'}\n"
            + "managers:\n"
            + "  _default_:\n"
            + "    type: queued_python\n"
            + f"    num_concurrent_jobs: {self.concurrency}\n"
            + "".join(f"{key}: {json.dumps(value)}\n" for key, value in self.extra.items())
        )
        ini = self.directory / "server.ini"
        text = ini.read_text()
        # pulsar-config logs every request at DEBUG; LWR's sample logs the app at INFO.
        quiet = text.replace("[logger_pulsar]\nlevel = DEBUG", "[logger_pulsar]\nlevel = INFO")
        if quiet == text:
            raise RuntimeError("could not set Pulsar's log level in the generated server.ini")
        ini.write_text(quiet)

    def command(self) -> list[str]:
        if self.threads:  # pulsar-serve with gunicorn's thread count changed, nothing else
            wrapper = str(BENCH_DIR / "pulsar_threads.py")
            return [str(PULSAR_VENV / "bin" / "python"), wrapper, str(self.threads), "server.ini"]
        return [str(PULSAR_VENV / "bin" / "pulsar-serve"), "server.ini"]

    def versions(self) -> dict[str, str]:
        return {"pulsar-app": pulsar_version(), "server": "gunicorn gthread, 1 worker, 4 threads"}


def _set_option(ini: str, section: str, name: str, value: str) -> str:
    """``ini`` with option ``name`` of ``[section]`` set to ``value`` (it must be there already)."""
    head, found, rest = ini.partition(f"[{section}]\n")
    body, more, tail = rest.partition("\n[")
    lines = body.split("\n")
    changed = [f"{name} = {value}" if line.startswith(f"{name} =") else line for line in lines]
    if not found or not any(line.startswith(f"{name} =") for line in lines):
        raise RuntimeError(f"no {name} in [{section}] of the generated server.ini")
    return head + found + "\n".join(changed) + more + tail


def ensure_pulsar() -> None:
    """Create ``bench/.venvs/pulsar`` with Pulsar 0.16 unless a finished install is there.

    pip's output goes to a log beside the venv and is shown only if the install fails.
    """
    if _PULSAR_MARKER.exists() and _PULSAR_MARKER.read_text().strip() == PULSAR_REQUIREMENT:
        return
    print(f"installing {PULSAR_REQUIREMENT} into {PULSAR_VENV} (once; later runs reuse it)")
    if not (PULSAR_VENV / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PULSAR_VENV)], check=True)
    log = PULSAR_VENV / "bench-install.log"
    with open(log, "wb") as out:
        result = subprocess.run(
            [str(PULSAR_VENV / "bin" / "pip"), "install", PULSAR_REQUIREMENT],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if result.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"installing {PULSAR_REQUIREMENT} failed:\n{tail}")
    _PULSAR_MARKER.write_text(PULSAR_REQUIREMENT + "\n")


def pulsar_version() -> str:
    """The installed Pulsar's version, read from its own interpreter."""
    result = subprocess.run(
        [str(PULSAR_VENV / "bin" / "python"), "-c", "import pulsar; print(pulsar.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def _healthz(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
