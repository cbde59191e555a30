"""``python -m bench.memwatch``: where a server's memory goes over many job cycles (issue 12).

Loads the app from the shipped sample in this process (as ``paster serve`` would, without the
HTTP server), drives whole job cycles through it (setup, upload, submit, status until done,
download, list, clean for three jobs in four) by the admin token and five service users, and
after every round prints the process RSS, SQLite's own heap (``sqlite3_memory_used`` of the
library Python's sqlite3 links) and the Python heap as tracemalloc sees it; at the end, the
allocation sites that grew most between the first and the last round. tracemalloc sees Python
allocations only, hence the SQLite figure beside it.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import secrets
import tempfile
import tracemalloc
from pathlib import Path

import psutil
from paste.deploy import loadapp

from tests.integration.server import free_port, write_server_ini
from tests.unit.test_memory_bounded import _Client


def _sqlite_used() -> int:
    """Bytes SQLite holds now, or -1 when its library cannot be found."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return -1
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return int(lib.sqlite3_memory_used())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cycles", type=int, default=200, help="job cycles per round")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="lwr-memwatch-"))
    admin = secrets.token_urlsafe(16)
    write_server_ini(directory, free_port(), {"private_token": admin})
    (directory / "job_managers.ini").write_text(
        "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 4\n"
    )
    client = _Client(loadapp(f"config:{directory / 'server.ini'}"))
    tokens = [admin] + [
        json.loads(client.call("POST", f"/users?name=watch{i}", admin))["token"] for i in range(5)
    ]
    process, done = psutil.Process(), 0
    tracemalloc.start(8)
    first = None
    for round_ in range(args.rounds):
        for _ in range(args.cycles):
            client.cycle(tokens[done % len(tokens)], f"watch{done:06d}", clean=done % 4 != 3)
            done += 1
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        first = first or snapshot
        print(
            f"round {round_}: {done} jobs, RSS {process.memory_info().rss / 2**20:.1f} MiB, "
            f"SQLite {_sqlite_used() / 2**10:.0f} KiB, "
            f"Python {tracemalloc.get_traced_memory()[0] / 2**10:.0f} KiB",
            flush=True,
        )
    if first is not None:
        for stat in snapshot.compare_to(first, "lineno")[:10]:
            print(stat)
    print(f"(server files in {directory})")


if __name__ == "__main__":
    main()
