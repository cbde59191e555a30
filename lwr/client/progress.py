"""A one-line progress bar on stderr for large transfers.

Staging a multi-GiB dataset takes long enough that a person at a terminal wants to see it move;
a log file or a pipe does not want ``\\r`` noise. So the bar draws only when stderr is a terminal
(or when asked to), only for files above a threshold, and at most ten times a second.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MIB = 1024 * 1024


class Progress:
    """Draws ``label  42%  107.5/256.0 MiB  312 MiB/s`` in place while a transfer runs."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        enabled: bool | None = None,
        threshold: int = 8 * MIB,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = _isatty(self.stream)
        self.enabled = enabled and total >= threshold
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, count: int) -> None:
        """Record ``count`` more bytes; redraw if a tenth of a second has passed."""
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn >= 0.1 or self.done >= self.total:
            self._drawn = now
            self._draw(now)

    def close(self) -> None:
        """Finish the line so the next output starts on a fresh one."""
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def reset(self) -> None:
        """Start over (a retry sends the file again from its start)."""
        self.done = 0
        self.started = time.monotonic()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-6)
        percent = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.done / MIB / elapsed
        line = (
            f"\r{self.label[-40:]:<40} {percent:5.1f}% "
            f"{self.done / MIB:8.1f}/{self.total / MIB:.1f} MiB {rate:7.1f} MiB/s"
        )
        self.stream.write(line)
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
