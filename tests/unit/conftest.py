"""Helpers shared by the unit tests: waiting for a background thread to reach a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def _wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Call ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def wait_for() -> Callable[..., object]:
    """``wait_for(condition, timeout=10, what="...")`` polls until ``condition()`` is truthy."""
    return _wait_for
