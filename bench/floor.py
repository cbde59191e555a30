"""The latency floor: what the same job costs this client against a server that does almost nothing.

Issue 14 asks for 5x Pulsar's latency. Whether that is reachable depends on what no server can
take away: ``pulsar.client`` opening a connection and building each request in Python, the
loopback round trips, the client's 5 ms poll, and starting the job's process. This module measures
that floor with the same client, the same steps and the same poll as the latency workload:

* :func:`serve` (``python -m bench.floor --port P --root DIR``) is a protocol server doing the
  least a correct answer needs: one ``mkdir`` per setup (every directory of the answer is the job
  directory), the upload written where it is asked, the command started with one fork and exec
  (``posix_spawn``-style ``Popen`` of the split command line, no shell, no script, no record on
  disk), the status answered from ``poll()``, the output sent back, the directory renamed away
  and deleted in a thread. No durability, no checks, no logging: nothing LWR may drop.
* :func:`process_costs`: the job's process alone, the command by itself against LWR's own job
  script (bash + the command), started and waited for from Python as a server would.
* :func:`request_costs`: one ``GET /healthz`` on a new connection with ``urllib`` (the client's
  transport), per server, alternating: the per-request price of each HTTP stack.

:func:`analysis` turns the medians into what the 5x target means against the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.servers import BenchServer

_REPOSITORY = Path(__file__).resolve().parent.parent

#: the setup answer's directory keys; the floor names the job directory for all of them
_DIRECTORY_KEYS = (
    "job_directory",
    "working_directory",
    "outputs_directory",
    "metadata_directory",
    "configs_directory",
    "tools_directory",
    "inputs_directory",
    "unstructured_files_directory",
)


class _State:
    """The floor server's whole state: its root and the jobs' processes, in memory only.

    With ``slots`` (the throughput floor) at most that many jobs run at once, as in the servers
    under test: ``slots`` threads each start a queued job, wait for it and take the next, so a
    job is started the moment a slot frees, with no record and no timer. Without, a submit
    starts its job in the request's own thread (the latency floor).
    """

    def __init__(self, root: Path, slots: int = 0) -> None:
        self.root = root
        self.slots = slots
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.lock = threading.Lock()
        #: return codes of the jobs the slot threads ran
        self.ended: dict[str, int] = {}
        self.queue: queue.SimpleQueue[tuple[str, list[str]]] = queue.SimpleQueue()
        for index in range(slots):
            threading.Thread(target=self._slot, name=f"slot-{index}", daemon=True).start()

    def start(self, job_id: str, argv: list[str]) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            argv,
            cwd=self.root / job_id,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with self.lock:
            self.children[job_id] = child
        return child

    def _slot(self) -> None:
        while True:
            job_id, argv = self.queue.get()
            code = self.start(job_id, argv).wait()
            with self.lock:
                self.ended[job_id] = code


class _Handler(BaseHTTPRequestHandler):
    """Answers the protocol's calls with the least work a correct answer needs."""

    state: _State
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log (neither server under test writes one)."""

    def do_GET(self) -> None:
        path, query = self._parsed()
        if path == ["healthz"]:
            self._json({"ok": True})
        elif len(path) == 3 and path[2] == "status":
            self._json(self._status(path[1]))
        elif len(path) == 3 and path[2] == "files":
            self._file(self.state.root / path[1] / os.path.basename(query["name"]))
        else:
            self._json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        path, query = self._parsed()
        if path == ["jobs"]:
            job_id = query["job_id"]
            directory = self.state.root / job_id
            directory.mkdir(exist_ok=True)
            answer: dict[str, Any] = dict.fromkeys(_DIRECTORY_KEYS, str(directory))
            answer.update(job_id=job_id, path_separator="/", system_properties={"separator": "/"})
            self._json(answer)
        elif len(path) == 3 and path[2] == "files":
            target = self.state.root / path[1] / os.path.basename(query["name"])
            length = int(self.headers.get("Content-Length") or 0)
            with open(target, "wb") as handle:
                handle.write(self.rfile.read(length))
            self._json({"path": str(target)})
        elif len(path) == 3 and path[2] == "submit":
            if self.state.slots:
                self.state.queue.put((path[1], shlex.split(query["command_line"])))
            else:
                self.state.start(path[1], shlex.split(query["command_line"]))
            self._json({})
        else:
            self._json({"error": "not found"}, 404)

    def do_DELETE(self) -> None:
        path, _ = self._parsed()
        with self.state.lock:
            self.state.children.pop(path[1], None)
            self.state.ended.pop(path[1], None)
        directory = self.state.root / path[1]
        doomed = directory.with_name(f".deleting-{path[1]}")
        os.rename(directory, doomed)
        threading.Thread(target=shutil.rmtree, args=(doomed, True), daemon=True).start()
        self._json({})

    def _status(self, job_id: str) -> dict[str, Any]:
        with self.state.lock:
            child = self.state.children.get(job_id)
            code = self.state.ended.get(job_id)
        if code is None and child is not None and not self.state.slots:
            code = child.poll()
        if code is None:
            return {"complete": "false", "status": "running", "job_id": job_id}
        directory = str(self.state.root / job_id)
        return {
            "complete": "true",
            "status": "complete",
            "returncode": code,
            "stdout": "",
            "stderr": "",
            "job_id": job_id,
            "working_directory": directory,
            "outputs_directory_contents": sorted(os.listdir(directory)),
        }

    def _parsed(self) -> tuple[list[str], dict[str, str]]:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        return [part for part in url.path.split("/") if part], query

    def _json(self, body: dict[str, Any], status: int = 200) -> None:
        self._send(json.dumps(body).encode(), "application/json", status)

    def _file(self, path: Path) -> None:
        self._send(path.read_bytes(), "application/octet-stream")

    def _send(self, data: bytes, content_type: str, status: int = 200) -> None:
        """Status line, headers and body in one write: no Nagle wait between two small sends."""
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + data)


class _Server(ThreadingHTTPServer):
    """The standard threading server with the kernel's longest accept queue: its default
    backlog of 5 drops part of eight clients' connection bursts, which the client's TCP stack
    retries a second later (a stall of the floor, not a cost of a server)."""

    request_queue_size = socket.SOMAXCONN


def serve(port: int, root: Path, slots: int = 0) -> None:
    """Serve the floor protocol on 127.0.0.1:``port`` until killed (``slots``: :class:`_State`)."""
    root.mkdir(parents=True, exist_ok=True)
    handler = type("FloorHandler", (_Handler,), {"state": _State(root, slots)})
    server = _Server(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()


class FloorBench(BenchServer):
    """The floor server as a process of its own, started and stopped like the servers under test."""

    name = "floor"
    #: jobs run at once (0: each submit starts its job at once, the latency floor)
    slots = 0

    def configure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        # started from its own directory: the repository goes on the path by name
        boot = f"import sys; sys.path.insert(0, {str(_REPOSITORY)!r}); import bench.floor; "
        boot += "bench.floor.main()"
        root = str(self.directory / "jobs")
        argv = [sys.executable, "-c", boot, "--port", str(self.port), "--root", root]
        return [*argv, "--slots", str(self.slots)] if self.slots else argv


def process_costs(jobs: int, scratch: Path) -> dict[str, float]:
    """Median ms to start and wait for the job's process: the command alone, LWR's job script.

    Alternating, like the servers. The script is LWR's own (:func:`lwr.managers.script.render`)
    for the bench's command, run by bash as LWR's local manager runs it (its own session).
    """
    from lwr.managers import script
    from lwr.managers.directory import JobDirectory

    directory = JobDirectory(Path(tempfile.mkdtemp(prefix="floor-process-", dir=scratch)))
    directory.create()
    source = directory.sub("inputs") / "in.txt"
    source.write_bytes(b"a small input of a small job\n" * 8)
    target = directory.sub("outputs") / "out.txt"
    command = ["cp", str(source), str(target)]
    text = script.render(directory, "floor", 1, shlex.join(command))
    job_script = script.write(directory, text)
    runs: dict[str, list[float]] = {"command_ms": [], "job_script_ms": []}
    for _ in range(jobs):
        for key, argv in (("command_ms", command), ("job_script_ms", ["bash", str(job_script)])):
            started = time.perf_counter()
            subprocess.run(argv, stdin=subprocess.DEVNULL, check=True, start_new_session=True)
            runs[key].append((time.perf_counter() - started) * 1000)
    shutil.rmtree(directory.root, ignore_errors=True)
    return {key: round(statistics.median(values), 2) for key, values in runs.items()}


def request_costs(urls: dict[str, str], requests: int) -> dict[str, float]:
    """Median ms of one ``GET /healthz`` on a new connection (urllib, as the client), per server."""
    times: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(requests):
        for name, url in urls.items():
            started = time.perf_counter()
            with urllib.request.urlopen(url + "healthz", timeout=30) as answer:
                answer.read()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def analysis(
    lwr_ms: float, pulsar_ms: float, floor_ms: float, target: float = 5.0
) -> dict[str, Any]:
    """What ``target`` x Pulsar's latency means against the floor.

    ``target_ms`` is the latency LWR would need; ``best_possible_x`` is the most any server
    could be ahead of Pulsar with this client (Pulsar over the floor); ``lwr_above_floor_ms`` is
    all LWR could still save, ``cut_needed_ms`` what the target asks it to save, and
    ``cut_fraction`` the second over the first: above 1 the target is below the floor.
    """
    target_ms = pulsar_ms / target
    above = lwr_ms - floor_ms
    needed = lwr_ms - target_ms
    return {
        "target_x": target,
        "target_ms": round(target_ms, 2),
        "floor_ms": round(floor_ms, 2),
        "reachable": target_ms >= floor_ms,
        "best_possible_x": round(pulsar_ms / floor_ms, 2) if floor_ms > 0 else None,
        "lwr_x": round(pulsar_ms / lwr_ms, 2) if lwr_ms > 0 else None,
        "lwr_above_floor_ms": round(above, 2),
        "cut_needed_ms": round(max(needed, 0.0), 2),
        "cut_fraction": round(needed / above, 2) if above > 0 and needed > 0 else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--slots", type=int, default=0, help="jobs run at once (0: no queue)")
    args = parser.parse_args(argv)
    serve(args.port, args.root, args.slots)


if __name__ == "__main__":
    main()
