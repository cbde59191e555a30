"""What a job's private copy of a cached input costs: hard link vs reflink attempt vs copy.

``python -m bench.cache_copy [DIRECTORY] [MIB]`` times, on the filesystem of DIRECTORY, handing
one job a file of MIB MiB (256 by default) the way :mod:`lwr.cache` could: a hard link (what it
did before, and what let a job change the cache), a ``FICLONE`` reflink attempt (free where the
filesystem shares blocks copy-on-write; refused on ext4), and the in-kernel copy that
:meth:`lwr.cache.FileCache.fill` falls back to. Warm page cache; the median of five runs.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lwr import cache


def _timed(action: Callable[[Path], object], target: Path) -> float:
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    action(target)
    elapsed = time.perf_counter() - start
    target.unlink(missing_ok=True)
    return elapsed


def measure(directory: Path, mib: int) -> dict[str, float | str]:
    """Median seconds per method, and whether the reflink was accepted."""
    source = directory / "cached"
    with open(source, "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1024 * 1024))
    target = directory / "job-copy"
    cloned: list[bool] = []

    def link(path: Path) -> None:
        os.link(source, path)

    def attempt_reflink(path: Path) -> None:
        with open(source, "rb") as src, open(path, "wb") as out:
            cloned.append(cache.clone(src.fileno(), out.fileno()))

    def copy(path: Path) -> None:
        with open(source, "rb") as src, open(path, "wb") as out:
            cache.copy_range(src.fileno(), out.fileno(), os.fstat(src.fileno()).st_size)

    results: dict[str, float | str] = {}
    for name, action in (("link", link), ("reflink attempt", attempt_reflink), ("copy", copy)):
        results[name] = statistics.median(_timed(action, target) for _ in range(5))
    results["reflink accepted"] = str(all(cloned))
    source.unlink()
    return results


def main(argv: list[str]) -> None:
    directory = Path(argv[0]) if argv else Path(tempfile.gettempdir())
    mib = int(argv[1]) if len(argv) > 1 else 256
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        results = measure(Path(scratch), mib)
    for name, value in results.items():
        if isinstance(value, float):
            rate = f"{mib / value:,.0f} MiB/s" if value else "-"
            print(f"{name:16} {value * 1000:9.2f} ms  {rate}")
        else:
            print(f"{name:16} {value}")


if __name__ == "__main__":
    main(sys.argv[1:])
