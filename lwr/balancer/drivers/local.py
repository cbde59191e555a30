"""Workers as LWR processes on this host, started from a worker config template.

Each worker gets a directory ``<state_directory>/workers/<worker_id>/``: a copy of the template
(``server.ini``, ``job_managers.ini``, ...), its log, and ``worker.json`` recording the pid and
the process's start time. The start time is what makes adoption after a balancer restart safe: a
pid the kernel reused for another program has another start time, so it is never mistaken for a
worker (nor killed). The record is written before the process starts (without a pid) and
completed right after; a balancer killed between the two finds the process again by its working
directory, so even that window leaves no orphan.

Workers are started the way users start LWR (``lwr serve server.ini`` in the directory, by
default), in a session of their own so that a balancer killed with -9 does not take them along,
with ``LWR_POOL_WORKER_ID`` in their environment and no cloud credentials.

When a worker has stopped (drained and exited, killed after its drain, or found dead by a
restarted balancer), its directory is removed if its job store says nothing is left to hand back
(see :mod:`lwr.balancer.drivers.local_state`), so ``workers/`` does not grow with every worker
ever started. A worker that died holding unfinished jobs keeps its directory (its log and job
store tell why; its jobs' setups went back to the broker), and the balancer's log says so.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import psutil

from lwr.balancer.drivers import local_state
from lwr.balancer.drivers.base import Driver, Worker, worker_environment
from lwr.errors import ConfigurationError

log = logging.getLogger(__name__)

RECORD = "worker.json"
WORKER_ID_ENV = "LWR_POOL_WORKER_ID"


class LocalDriver(Driver):
    alias = "local"
    DEFAULTS: ClassVar[dict[str, str]] = {
        "worker_template": "",
        "worker_command": "lwr serve server.ini",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        template = self.options["worker_template"]
        if not template:
            raise ConfigurationError("[driver:local] worker_template must name a directory")
        self.template = (self.config.path.parent / template).resolve()
        if not (self.template / "server.ini").is_file():
            raise ConfigurationError(
                f"[driver:local] worker_template {str(self.template)!r} has no server.ini"
            )
        self.command = _command(self.options["worker_command"])
        self.root = self.config.state_directory / "workers"
        self.workers: dict[str, Worker] = {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> list[Worker]:
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in sorted(self.root.iterdir()):
            record = _read(directory / RECORD)
            if record is None:
                continue
            process = self._find(directory, record)
            if process is None:
                log.info("worker %s (%s) is gone; forgetting it", directory.name, record)
                self._retire(directory, None)
                continue
            worker = Worker(directory.name, record["launched_at"], f"pid {process.pid}", True)
            _write(directory / RECORD, {**record, **_identity(process)})
            self.workers[worker.worker_id] = worker
        return list(self.workers.values())

    def launch(self, count: int) -> list[Worker]:
        return [self._launch_one() for _ in range(count)]

    def _launch_one(self) -> Worker:
        worker_id = f"{self.config.name}-{uuid.uuid4().hex[:10]}"
        directory = self.root / worker_id
        shutil.copytree(self.template, directory, ignore=shutil.ignore_patterns("files", "*.log"))
        launched_at = time.time()
        record: dict[str, Any] = {"worker_id": worker_id, "launched_at": launched_at, "pid": None}
        _write(directory / RECORD, record)  # first, so a crash right after Popen leaves a trace
        env = {**worker_environment(), WORKER_ID_ENV: worker_id}
        with open(directory / "worker.log", "ab") as output:
            process = subprocess.Popen(
                self.command,
                cwd=directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes[worker_id] = process
        _write(directory / RECORD, {**record, **_identity(psutil.Process(process.pid))})
        worker = Worker(worker_id, launched_at, f"pid {process.pid}")
        self.workers[worker_id] = worker
        log.info("launched worker %s (pid %d) in %s", worker_id, process.pid, directory)
        return worker

    def alive(self) -> dict[str, Worker]:
        for worker_id in list(self.workers):
            if not self._running(worker_id):
                log.info("worker %s exited", worker_id)
                self._forget(worker_id)
        return dict(self.workers)

    def terminate(self, worker_id: str) -> None:
        process = self._process(worker_id)
        status = None
        if process is not None:
            log.warning("killing worker %s (pid %d)", worker_id, process.pid)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
            try:
                status = process.wait(10)  # reaps a child of ours: its status is only here
            except psutil.TimeoutExpired:
                log.error("worker %s (pid %d) did not die", worker_id, process.pid)
                self._forget(worker_id, retire=False)  # its directory is still in use
                return
        popen = self._processes.get(worker_id)
        if popen is not None and status is None:
            status = popen.poll()
        self._forget(worker_id, status)

    def _running(self, worker_id: str) -> bool:
        popen = self._processes.get(worker_id)
        if popen is not None:
            return popen.poll() is None
        return self._process(worker_id) is not None

    def _process(self, worker_id: str) -> psutil.Process | None:
        directory = self.root / worker_id
        record = _read(directory / RECORD)
        return None if record is None else self._find(directory, record)

    def _find(self, directory: Path, record: dict[str, Any]) -> psutil.Process | None:
        """The worker's process if it still runs: same pid *and* start time, or, for a record
        without a pid (the balancer died while launching), the process running in its directory."""
        if record.get("pid"):
            try:
                process = psutil.Process(record["pid"])
                if process.create_time() == record["started"] and _live(process):
                    return process
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
            return None
        for process in psutil.process_iter(["cwd"]):
            if process.info.get("cwd") == str(directory) and _live(process):
                return process
        return None

    def _forget(self, worker_id: str, status: int | None = None, retire: bool = True) -> None:
        self.workers.pop(worker_id, None)
        popen = self._processes.pop(worker_id, None)
        if status is None and popen is not None:
            status = popen.returncode
        if retire:
            self._retire(self.root / worker_id, status)
        else:
            (self.root / worker_id / RECORD).unlink(missing_ok=True)

    def _retire(self, directory: Path, status: int | None) -> None:
        """Remove the stopped worker's directory, unless its job store still holds unfinished
        jobs (or cannot be read, and the worker did not exit cleanly): then keep it and say so."""
        unfinished = local_state.unfinished_jobs(directory)
        how = local_state.exit_words(status)
        if unfinished == 0 or (unfinished is None and status == 0):
            if status not in (0, None, -signal.SIGKILL, -signal.SIGTERM):
                log.warning(
                    "worker %s %s; the end of its log:\n%s",
                    directory.name,
                    how,
                    local_state.log_tail(directory),
                )
            shutil.rmtree(directory, ignore_errors=True)
            log.info("worker %s %s with nothing left to hand back; removed %s",
                     directory.name, how, directory)  # fmt: skip
            return
        (directory / RECORD).unlink(missing_ok=True)
        held = (
            f"{unfinished} unfinished job(s) in its job store"
            if unfinished
            else "a job store this balancer cannot read"
        )
        log.warning(
            "worker %s %s with %s: keeping %s (its worker.log and job store) for inspection; "
            "its jobs' setups went back to the broker and run on other workers; remove the "
            "directory by hand when done",
            directory.name,
            how,
            held,
            directory,
        )


def _command(text: str) -> list[str]:
    """``worker_command`` as argv; a bare ``lwr`` is the one installed beside this Python."""
    argv = shlex.split(text)
    if not argv:
        raise ConfigurationError("[driver:local] worker_command must not be empty")
    beside = Path(sys.executable).parent / argv[0]
    if "/" not in argv[0] and beside.exists():
        argv[0] = str(beside)
    return argv


def _identity(process: psutil.Process) -> dict[str, Any]:
    return {"pid": process.pid, "started": process.create_time()}


def _live(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a balancer killed mid-write leaves the old record, never half of one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)
