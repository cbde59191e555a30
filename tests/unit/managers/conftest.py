"""Fixtures shared by the manager tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.managers.stateful_support import Harness


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A :class:`Harness` whose managers are stopped and leftover processes killed afterwards."""
    built = Harness(tmp_path)
    yield built
    built.close()
