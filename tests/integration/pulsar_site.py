"""Server directories laid out as Pulsar's (``pulsar-config``) or by ``lwr config``, started the
way their own instructions say: a command run in the directory."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.integration.server import BIN, LwrServer


def pulsar_config(directory: Path, *args: str) -> None:
    """Run the real ``pulsar-config`` (shipped by pulsar-galaxy-lib) into ``directory``."""
    subprocess.run(
        [str(BIN / "pulsar-config"), "--directory", str(directory), *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def lwr_config(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``lwr config --directory DIRECTORY ARGS``; the result, whatever its exit code."""
    return subprocess.run(
        [str(BIN / "lwr"), "config", "--directory", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def job_conf_snippet(stdout: str) -> str:
    """The job_conf.yml text ``lwr config`` prints after its instructions."""
    marker = "Galaxy's job_conf.yml (merge into yours):\n"
    assert marker in stdout, stdout
    return stdout.split(marker, 1)[1]


class CommandServer(LwrServer):
    """LWR started by ``argv`` in ``directory``; ready when healthy, or (``webless``) consuming."""

    def __init__(
        self,
        directory: Path,
        argv: Sequence[str],
        port: int | None = None,
        webless_managers: Sequence[str] = (),
    ) -> None:
        super().__init__(directory, port)
        self.argv = list(argv)
        self.webless_managers = tuple(webless_managers)

    def start(self, timeout: float = 30.0) -> CommandServer:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        if not self.webless_managers:
            super().wait_healthy(timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"LWR exited with {self.process.returncode}:\n{self.log()}")
            if all(f"manager {m}: consuming" in self.log() for m in self.webless_managers):
                return
            time.sleep(0.1)
        raise RuntimeError(f"LWR did not start consuming in {timeout}s:\n{self.log()}")

    def exit_output(self, timeout: float = 30.0) -> tuple[int, str]:
        """Start, expecting the process to exit: its return code and output."""
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                self.argv, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        return code, self.log()
