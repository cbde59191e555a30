"""The [load table]: rows, boundaries, and malformed tables refused with their line number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwr.balancer.loadtable import NO_ROW, parse_load_table
from lwr.errors import ConfigurationError

TABLE = parse_load_table(
    enumerate(["# rate min max", "0.1 1 2", "", "1   2 4  # busy", "5 4 8"], start=10)
)


def test_rows_keep_their_line_numbers() -> None:
    assert [(r.rate, r.min, r.max, r.line) for r in TABLE.rows] == [
        (0.1, 1, 2, 11),
        (1.0, 2, 4, 13),
        (5.0, 4, 8, 14),
    ]
    assert TABLE.max_pool == 8


@pytest.mark.parametrize(
    ("load", "index", "bounds"),
    [
        (0.0, -1, (0, 0)),
        (0.0999, -1, (0, 0)),
        (0.1, 0, (1, 2)),  # a row starts at its rate, inclusive
        (0.99, 0, (1, 2)),
        (1.0, 1, (2, 4)),
        (4.999, 1, (2, 4)),
        (5.0, 2, (4, 8)),
        (1e9, 2, (4, 8)),  # above the last rate: the last row
    ],
)
def test_every_row_and_boundary(load: float, index: int, bounds: tuple[int, int]) -> None:
    found, row = TABLE.row_for(load)
    assert found == index
    assert (row.min, row.max) == bounds


def test_below_the_first_rate_is_no_worker() -> None:
    assert TABLE.row_for(0.05)[1] is NO_ROW


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_the_row_found_is_the_last_whose_rate_is_reached(load: float) -> None:
    index, row = TABLE.row_for(load)
    reached = [r for r in TABLE.rows if r.rate <= load]
    assert (row == reached[-1]) if reached else (index == -1 and row == NO_ROW)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["0 1 1", "1 2"], "line 2"),
        (["0 1 1", "x 2 3"], "line 2: 'x 2 3': rate 'x' is not a number"),
        (["0 1 1", "-1 2 3"], "line 2"),
        (["0 1 1", "inf 2 3"], "finite"),
        (["1 1 1", "0.5 2 3"], "line 2: '0.5 2 3': rates must increase (line 1 has 1)"),
        (["1 1 1", "1 2 3"], "rates must increase"),
        (["0 1 1", "", "2 3 1.5"], "line 3: '2 3 1.5': max '1.5' is not a whole number"),
        (["0 -1 1"], "min '-1'"),
        (["0 3 2"], "line 1: '0 3 2': min 3 is above max 2"),
        (["# nothing", ""], "no rows"),
    ],
)
def test_malformed_tables_are_refused_naming_the_line(lines: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_load_table(enumerate(lines, start=1))
    assert message in refused.value.message
