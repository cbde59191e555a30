"""Fixtures of the service tests: a real (SQLite) job store in the test's directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.persistence.store import JobStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    job_store = JobStore(tmp_path / "state")
    yield job_store
    job_store.close()
