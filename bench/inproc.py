"""``python -m bench.inproc``: LWR's own CPU per job, in one process, without HTTP.

The bench's throughput CPU figures (:mod:`bench.cpu`) include the HTTP server, the threads
fighting for one interpreter lock and every other process on the machine; to see what LWR's
application code costs per job, and to A/B a change to it with little noise, this builds the
same application the bench serves (``server.ini`` of :class:`bench.servers.LwrBench`, loaded
with PasteDeploy), and drives the bench's small job through Galaxy's own client
(``pulsar.client``) with a transport that calls the WSGI application directly. One job at a
time; the client's own CPU is left out by timing the main thread around each call of the
application (``time.thread_time``); the server's background threads (monitor, reaper, the
deletion of cleaned directories) are the process's CPU time beyond the main thread's.

``--profile FILE`` writes a cProfile of the application calls (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.client import Driver, Poll
from bench.servers import LwrBench


class WsgiTransport:
    """``pulsar.client``'s transport interface, answered by a WSGI application in-process."""

    def __init__(self, app: Any, profiler: cProfile.Profile | None = None) -> None:
        self.app = app
        self.profiler = profiler
        #: main-thread CPU seconds spent inside the application, per route label
        self.spent: dict[str, list[float]] = defaultdict(list)

    def execute(
        self,
        url: str,
        method: str | None = None,
        data: Any = None,
        input_path: str | None = None,
        output_path: str | None = None,
    ) -> bytes:
        from webob import Request

        parts = urlsplit(url)
        body = Path(input_path).read_bytes() if input_path else data
        request = Request.blank(
            parts.path, method=method or ("POST" if body is not None else "GET")
        )
        request.query_string = parts.query
        if body is not None:
            request.body = body if isinstance(body, bytes) else str(body).encode()
        started = time.thread_time()
        if self.profiler is not None:
            self.profiler.enable()
        response = request.get_response(self.app)
        payload = b"".join(response.app_iter)
        if self.profiler is not None:
            self.profiler.disable()
        label = f"{request.method} {_label(parts.path)}"
        self.spent[label].append(time.thread_time() - started)
        if response.status_int >= 400:
            raise RuntimeError(f"{label}: {response.status} {payload[:300]!r}")
        if output_path:
            Path(output_path).write_bytes(payload)
        return payload


def _label(path: str) -> str:
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "jobs":
        parts[1] = "{id}"
    return "/" + "/".join(parts)


def run(jobs: int, profile: Path | None) -> dict[str, Any]:
    from paste.deploy import loadapp

    with tempfile.TemporaryDirectory(prefix="lwr-inproc-") as tmp:
        scratch = Path(tmp)
        server = LwrBench(scratch / "lwr", 2)
        server.configure()
        app = loadapp(f"config:{server.directory / 'server.ini'}")
        profiler = cProfile.Profile(time.thread_time) if profile else None
        transport = WsgiTransport(app, profiler)
        driver = Driver("http://inproc/", "urllib", Poll(0.002))
        driver._manager.job_manager_interface_args["transport"] = transport
        source = scratch / "in.txt"
        source.write_bytes(b"throughput\n")
        try:
            driver.copy_job("warm", source, scratch / "out-warm.txt")  # imports, connections
            transport.spent.clear()
            main_started, process_started = time.thread_time(), time.process_time()
            for index in range(jobs):
                driver.copy_job(f"j{index}", source, scratch / "out.txt")
            time.sleep(0.5)  # the last cleaned directory's deletion, in the background
            main = time.thread_time() - main_started
            process = time.process_time() - process_started
        finally:
            with contextlib.suppress(Exception):
                app.app.stop()
    in_app = sum(sum(v) for v in transport.spent.values())
    background = process - main
    if profiler is not None and profile is not None:
        profiler.dump_stats(str(profile))
    per_route = {
        label: {
            "calls_per_job": round(len(v) / jobs, 2),
            "median_ms": round(statistics.median(v) * 1000, 3),
            "ms_per_job": round(sum(v) * 1000 / jobs, 3),
        }
        for label, v in sorted(transport.spent.items())
    }
    return {
        "jobs": jobs,
        "server_ms_per_job": round((in_app + background) * 1000 / jobs, 3),
        "requests_ms_per_job": round(in_app * 1000 / jobs, 3),
        "background_ms_per_job": round(background * 1000 / jobs, 3),
        "client_ms_per_job": round((main - in_app) * 1000 / jobs, 3),
        "routes": per_route,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the app calls here")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.jobs, args.profile), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
