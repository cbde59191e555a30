"""Where LWR's time goes: py-spy samples of a real LWR server under one benchmark workload.

py-spy cannot attach to an unrelated process on this kind of host (ptrace is limited to
descendants), so the profiled server is started *under* py-spy (``py-spy record -- paster serve
server.ini``) on its own, one fresh server per workload. That also keeps the sampler away from
the side-by-side numbers, which are measured without it.
"""

from __future__ import annotations

import collections
import re
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from bench.servers import LwrBench

RATE = 250


class ProfiledLwr(LwrBench):
    """LWR served under ``py-spy record``; stopping the server makes py-spy write its samples."""

    def __init__(self, directory: Path, concurrency: int, output: Path) -> None:
        super().__init__(directory, concurrency)
        self.output = output

    def configure(self) -> None:
        """As for the comparison, but with the access log on: it times every request."""
        super().configure()
        ini = self.directory / "server.ini"
        ini.write_text(
            ini.read_text().replace(
                "[logger_access]\nlevel = WARNING", "[logger_access]\nlevel = INFO"
            )
        )

    def command(self) -> list[str]:
        py_spy = str(Path(sys.executable).parent / "py-spy")
        return [
            py_spy,
            "record",
            "--format",
            "raw",
            "--full-filenames",
            "--nonblocking",
            "--rate",
            str(RATE),
            "-o",
            str(self.output),
            "--",
            *super().command(),
        ]

    def stop(self) -> None:
        """SIGTERM paster (py-spy's child); py-spy then writes its file and exits by itself."""
        process, self.process = self.process, None
        if process is None:
            return
        for child in psutil.Process(process.pid).children():
            child.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summarize(raw: Path, top: int = 12) -> dict[str, Any]:
    """Busy samples by LWR function (inclusive) and by the code finally running (self)."""
    stacks = _read(raw)
    waiting = sum(n for frames, n in stacks.items() if _waiting(frames))
    starting = sum(n for frames, n in stacks.items() if _importing(frames))
    stacks = collections.Counter(
        {f: n for f, n in stacks.items() if not _waiting(f) and not _importing(f)}
    )
    total = sum(stacks.values()) or 1
    inclusive: collections.Counter[str] = collections.Counter()
    owner: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    for frames, count in stacks.items():
        ours = [frame for frame in frames if _is_lwr(frame)]
        for frame in set(ours):
            inclusive[frame] += count
        owner[ours[-1] if ours else "(no LWR frame: server/library threads)"] += count
        leaf[frames[-1]] += count

    def table(counter: collections.Counter[str]) -> list[dict[str, Any]]:
        return [
            {
                "where": where,
                "samples": n,
                "seconds": round(n / RATE, 2),
                "percent": round(100 * n / total, 1),
            }
            for where, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "busy_seconds": round(total / RATE, 2),
        "excluded": {"waiting_samples": waiting, "start_up_import_samples": starting},
        "rate_hz": RATE,
        "lwr_inclusive": table(inclusive),
        "deepest_lwr_frame": table(owner),
        "self": table(leaf),
    }


def _read(raw: Path) -> collections.Counter[tuple[str, ...]]:
    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        body, _, count = line.rpartition(" ")
        if body and count.isdigit():
            stacks[tuple(_short(frame) for frame in body.split(";"))] += int(count)
    return stacks


def _short(frame: str) -> str:
    """``func (/long/path/lwr/x.py:12)`` -> ``lwr/x.py:func``; libraries by package path."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    else:
        if "/lwr/" in path:
            path = "lwr/" + path.rsplit("/lwr/", 1)[1]
    return f"{path}:{name}"


#: leaves where a thread sits waiting (py-spy's idle heuristic misses some): not work
_WAITS = (
    "stdlib/threading.py:Condition.wait",
    "stdlib/threading.py:Event.wait",
    "stdlib/selectors.py:EpollSelector.select",
    "stdlib/subprocess.py:Popen._try_wait",
    "stdlib/socket.py:socket.accept",
    "stdlib/queue.py:Queue.get",
)


def _waiting(frames: tuple[str, ...]) -> bool:
    return frames[-1] in _WAITS


def _importing(frames: tuple[str, ...]) -> bool:
    """Samples of the server's start-up (module imports), not of serving the workload."""
    return any(frame.startswith("<frozen importlib") for frame in frames)


def _is_lwr(frame: str) -> bool:
    return frame.startswith("lwr/")


_EVENT = re.compile(
    r"^(\S+ \d\d:\d\d:\d\d,\d{3}) INFO .*\] job [^/]+/(\S+): (queued|started as|finished)"
)


def lifecycle_times(log: Path) -> dict[str, float]:
    """Median ms a job spends queued->started->finished, from LWR's INFO log (1 ms resolution).

    ``finished`` is logged when the monitor has recorded the final state, so the second gap holds
    the job script's own run and the time until the server noticed it had ended.
    """
    events: dict[str, dict[str, float]] = collections.defaultdict(dict)
    for line in log.read_text(errors="replace").splitlines():
        found = _EVENT.search(line)
        if found is None:
            continue
        stamp, job_id, event = found.groups()
        clock = stamp.split(" ")[1].replace(",", ":").split(":")
        seconds = int(clock[0]) * 3600 + int(clock[1]) * 60 + int(clock[2]) + int(clock[3]) / 1e3
        events[job_id].setdefault(event, seconds)
    gaps: dict[str, list[float]] = collections.defaultdict(list)
    for seen in events.values():
        if {"queued", "started as", "finished"} <= seen.keys():
            gaps["queued_to_started_ms"].append(seen["started as"] - seen["queued"])
            gaps["started_to_finished_ms"].append(seen["finished"] - seen["started as"])
    return {key: round(statistics.median(v) * 1000, 1) for key, v in gaps.items()}


_ACCESS = re.compile(r"\[lwr\.access\].* (GET|POST|PUT|DELETE) (\S+) (\d{3}) ([\d.]+)ms$")
_JOB_SEGMENT = re.compile(r"^/jobs/[^/]+")


def route_times(log: Path) -> dict[str, dict[str, float]]:
    """Server-side milliseconds per route, from LWR's own access log (request in to response
    object out; a download's body streams after that and is not included)."""
    times: dict[str, list[float]] = collections.defaultdict(list)
    for line in log.read_text(errors="replace").splitlines():
        found = _ACCESS.search(line)
        if found is None:
            continue
        method, target, _status, ms = found.groups()
        route = _JOB_SEGMENT.sub("/jobs/{id}", target.split("?", 1)[0])
        times[f"{method} {route}"].append(float(ms))
    return {
        route: {
            "n": len(values),
            "median_ms": round(statistics.median(values), 2),
            "max_ms": round(max(values), 2),
        }
        for route, values in sorted(times.items())
    }
