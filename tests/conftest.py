"""Shared test helpers: the CI rule that a missing service fails instead of skipping."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest

CI_VALUES = ("1", "true", "yes")


def in_ci(environ: Mapping[str, str]) -> bool:
    """The one reading of ``CI`` for every test: 1, true or yes (any case, spaces ignored)."""
    return environ.get("CI", "").strip().lower() in CI_VALUES


IN_CI = in_ci(os.environ)


def require_service(available: bool, reason: str) -> None:
    """Skip locally when a service is absent; in CI (CI=true) fail, since every test must run."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)
