"""Diagnostics only: ``LWR_TRACEMALLOC=FILE`` makes the server write tracemalloc diffs (issue 12).

Inert unless the variable is set when the app is built. Then tracemalloc starts, and every
``LWR_TRACEMALLOC_EVERY`` seconds (default 30) the allocation sites that grew most since the
first snapshot are appended to FILE, with the traced total, so a soak shows what the server
itself keeps. It slows the server several times: never for figures, only to find a leak.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc


def start_from_environment() -> None:
    """Start the dumping thread when ``LWR_TRACEMALLOC`` names a file."""
    path = os.environ.get("LWR_TRACEMALLOC")
    if not path:
        return
    every = float(os.environ.get("LWR_TRACEMALLOC_EVERY", "30"))
    tracemalloc.start(6)
    threading.Thread(target=_dump, args=(path, every), name="lwr-memtrace", daemon=True).start()


def _dump(path: str, every: float) -> None:
    first = tracemalloc.take_snapshot()
    started = time.monotonic()
    while True:
        time.sleep(every)
        snapshot = tracemalloc.take_snapshot()
        with open(path, "a", encoding="utf-8") as out:
            elapsed = time.monotonic() - started
            out.write(f"== {elapsed:.0f}s traced {tracemalloc.get_traced_memory()[0]} B\n")
            for stat in snapshot.compare_to(first, "traceback")[:8]:
                out.write(f"{stat}\n")
                out.writelines(f"    {line}\n" for line in stat.traceback.format()[-12:])
