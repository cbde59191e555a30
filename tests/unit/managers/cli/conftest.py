"""Fixtures of the CLI manager's unit tests."""

from __future__ import annotations

import pytest

from tests.unit.managers.cli.replay import ReplayShell


@pytest.fixture
def shell() -> ReplayShell:
    """A shell that answers from queued replies instead of running anything."""
    return ReplayShell()
