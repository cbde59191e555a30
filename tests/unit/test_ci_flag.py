"""``CI`` means the same everywhere: 1, true or yes, read in one place (tests/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import in_ci

REPO = Path(__file__).resolve().parents[2]
# A Python or shell reading of the CI variable (not LWR_CI_..., not a word in prose).
READS_CI = re.compile(
    r"""environ(?:\.get)?\s*[\[(]\s*["']CI["']|getenv\(\s*["']CI["']|\$\{?CI\b(?![A-Za-z0-9_])"""
)


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "yes", "Yes", " yes "])
def test_ci_values(value: str) -> None:
    assert in_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "2", "y"])
def test_not_ci_values(value: str) -> None:
    assert not in_ci({"CI": value})


def test_unset_is_not_ci() -> None:
    assert not in_ci({})


def _sources() -> list[Path]:
    found = [REPO / "run_tests.sh", *(REPO / ".ci").iterdir()]
    for folder in ("tests", "bench", "scripts", "lwr"):
        found += [p for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".sh")]
    return [p for p in found if p.is_file()]


def test_ci_read_only_in_conftest() -> None:
    """Any other reading could disagree on 1/yes (sge_env.py once accepted only ``true``)."""
    readers = [
        str(path.relative_to(REPO))
        for path in _sources()
        if path != REPO / "tests" / "conftest.py"
        and READS_CI.search(path.read_text(errors="replace"))
    ]
    assert readers == []
