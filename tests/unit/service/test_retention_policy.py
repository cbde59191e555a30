"""Retention deadlines and upgrade rules: pure functions, no I/O."""

from __future__ import annotations

import pytest

from lwr.errors import LwrError
from lwr.service.plans import Plan, Plans
from lwr.service.retention import policy
from lwr.service.retention.access import reads_archived, upgrade_to


def test_a_deadline_is_the_finish_plus_the_plans_minutes() -> None:
    assert policy.hot_until(1000.0, 10) == 1600.0
    assert policy.hot_until(1000.0, 0.05) == pytest.approx(1003.0)
    assert policy.hot_until(1000.0, None) is None


def test_due_only_once_the_deadline_passed_and_never_for_forever() -> None:
    assert policy.is_due(100.0, 100.0) and policy.is_due(99.0, 100.0)
    assert not policy.is_due(101.0, 100.0)
    assert not policy.is_due(None, 1e12)


@pytest.mark.parametrize(
    ("old", "new", "longer"),
    [
        (10, None, True),
        (10, 20, True),
        (20, 10, False),
        (None, 10, False),
        (None, None, False),
        (10, 10, False),
    ],
)
def test_keeps_longer(old: float | None, new: float | None, longer: bool) -> None:
    assert policy.keeps_longer(old, new) is longer


def test_later_prefers_forever() -> None:
    assert policy.later(5.0, 7.0) == 7.0 and policy.later(9.0, 7.0) == 9.0
    assert policy.later(None, 7.0) is None and policy.later(5.0, None) is None


def test_an_upgrade_restores_only_what_the_new_plan_still_keeps() -> None:
    assert policy.restores(1000.0, None, 1e9)
    assert policy.restores(1000.0, 60, 1000.0 + 59 * 60)
    assert not policy.restores(1000.0, 60, 1000.0 + 61 * 60)


def test_upgrade_to_names_the_plans_that_would_restore_in_order() -> None:
    plans = Plans(
        (Plan("free", retention_minutes=10), Plan("lab", retention_minutes=60), Plan("premium"))
    )
    assert upgrade_to(plans, plans.get("free"), 0.0, 30 * 60) == ["lab", "premium"]
    assert upgrade_to(plans, plans.get("free"), 0.0, 90 * 60) == ["premium"]
    assert upgrade_to(plans, plans.get("premium"), 0.0, 90 * 60) == []


@pytest.mark.parametrize(
    ("file_type", "name", "archived"),
    [
        ("output", "x", True),
        ("output_workdir", "a/b", True),
        ("output_metadata", "m", False),
        ("output_jobdir", "outputs/x", True),
        ("output_jobdir", "working/x", True),
        ("output_jobdir", "stdout", False),
        ("input", "x", False),
        ("output_jobdir", "../x", False),
    ],
)
def test_which_downloads_read_archived_directories(
    file_type: str, name: str, archived: bool
) -> None:
    try:
        assert reads_archived(file_type, name) is archived
    except LwrError:  # pragma: no cover - reads_archived must never raise
        pytest.fail("reads_archived raised")


def test_a_plan_may_keep_results_a_fraction_of_a_minute() -> None:
    """What the integration tests use to see an archive within seconds."""
    from pathlib import Path

    from lwr.service.plans import parse_plans

    plans = parse_plans({"free": {"retention_minutes": "0.05"}}, Path("."))
    assert plans.get("free").retention_minutes == 0.05
    assert policy.hot_until(0.0, plans.get("free").retention_minutes) == pytest.approx(3.0)
