"""The ``[load table]`` of balancer.ini: which pool size range a load calls for.

Each line is ``<rate> <min> <max>``. A load below the first rate calls for no worker; a load from
one rate up to (not including) the next keeps the pool within that row's ``[min, max]``; a load at
or above the last rate uses the last row. A range rather than one number is what keeps the pool
from flapping: :mod:`lwr.balancer.policy` only moves the pool when it leaves the range (or when
work waits, or workers sit idle).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from lwr.errors import ConfigurationError


@dataclass(frozen=True)
class Row:
    """One line of the table; ``line`` is its line number in the file, for messages."""

    rate: float
    min: int
    max: int
    line: int = 0


#: what a load below the first rate falls in: no worker at all
NO_ROW = Row(rate=0.0, min=0, max=0, line=0)


@dataclass(frozen=True)
class LoadTable:
    rows: tuple[Row, ...]

    def row_for(self, load: float) -> tuple[int, Row]:
        """The index of the row ``load`` falls in (-1 below the first rate) and the row."""
        found, row = -1, NO_ROW
        for index, candidate in enumerate(self.rows):
            if load >= candidate.rate:
                found, row = index, candidate
            else:
                break
        return found, row

    @property
    def max_pool(self) -> int:
        return max(row.max for row in self.rows)


def parse_load_table(lines: Iterable[tuple[int, str]]) -> LoadTable:
    """Parse numbered lines (comments and blanks allowed) into a LoadTable.

    Refuses, naming the line: a line without exactly three fields, a rate that is not a finite
    non-negative number or not above the previous one, a min or max that is not a non-negative
    integer, and a min above its max. An empty table is refused too: the balancer would never run
    a worker.
    """
    rows: list[Row] = []
    for number, raw in lines:
        text = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not text:
            continue
        rows.append(_row(number, text, rows[-1] if rows else None))
    if not rows:
        raise ConfigurationError("[load table] has no rows; write lines of '<rate> <min> <max>'")
    return LoadTable(tuple(rows))


def _row(number: int, text: str, previous: Row | None) -> Row:
    where = f"[load table] line {number}: {text!r}"
    fields = text.split()
    if len(fields) != 3:
        raise ConfigurationError(f"{where}: expected '<rate> <min> <max>'")
    try:
        rate = float(fields[0])
    except ValueError:
        raise ConfigurationError(f"{where}: rate {fields[0]!r} is not a number") from None
    if not math.isfinite(rate) or rate < 0:
        raise ConfigurationError(f"{where}: rate must be a finite number >= 0")
    if previous is not None and rate <= previous.rate:
        raise ConfigurationError(
            f"{where}: rates must increase (line {previous.line} has {previous.rate:g})"
        )
    low, high = (_count(fields[1], "min", where), _count(fields[2], "max", where))
    if low > high:
        raise ConfigurationError(f"{where}: min {low} is above max {high}")
    return Row(rate=rate, min=low, max=high, line=number)


def _count(value: str, name: str, where: str) -> int:
    if not value.isdigit():
        raise ConfigurationError(f"{where}: {name} {value!r} is not a whole number >= 0")
    return int(value)
