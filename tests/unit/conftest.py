"""Helpers shared by the unit tests: waiting for a background thread, choosing how bodies move."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from lwr.staging import splice

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


@pytest.fixture(params=["splice", "readinto", "splice refused"])
def body_path(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, list[int]]:
    """How upload and download bodies move in this test: by ``splice``, by ``readinto`` where
    splice is absent, or by ``readinto`` after the kernel refused splice (simulated: this kernel
    splices TCP; an old one or a seccomp filter answers EINVAL/EPERM). Returns the mode and the
    bytes each splice call moved, so a test can check which path really carried the body."""
    if request.param == "readinto":
        monkeypatch.setattr(splice, "available", lambda: False)
    elif request.param == "splice refused":

        def refuse(*args: object, **kwargs: object) -> int:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

        monkeypatch.setattr(os, "splice", refuse)
    moved: list[int] = []
    real = splice.receive_into_file

    def counting(*args: Any, **kwargs: Any) -> int:
        moved.append(real(*args, **kwargs))
        return moved[-1]

    monkeypatch.setattr(splice, "receive_into_file", counting)
    return request.param, moved
