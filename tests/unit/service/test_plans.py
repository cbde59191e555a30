"""Plans and their limits: parsing the configuration, and the pure upload checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.errors import ConfigurationError, InvalidRequestError, QuotaExceededError
from lwr.service.plans import (
    DEFAULT_PLANS,
    Plan,
    Plans,
    budget,
    check_size,
    parse_plans,
    parse_size,
)

FREE = DEFAULT_PLANS[0]


def test_the_shipped_plans() -> None:
    plans = Plans()
    assert plans.names() == ["free", "premium"] and plans.default == "free"
    assert (FREE.max_input_size, FREE.retention_minutes) == (150_000, 10.0)
    premium = plans.get("premium")
    assert premium.max_input_size is None and premium.retention_minutes is None


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("150 KB", 150_000),
        ("150KiB", 153_600),
        ("1.5 MB", 1_500_000),
        ("2 GiB", 2 * 2**30),
        ("42", 42),
        ("42 B", 42),
        (7, 7),
        ("unlimited", None),
        (None, None),
        ("forever", None),
    ],
)
def test_sizes(text: object, size: int | None) -> None:
    assert parse_size(text, "k") == size


@pytest.mark.parametrize("text", ["150 KX", "-1", "lots", "1e3"])
def test_bad_sizes_name_the_key(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"free\.max_input_size"):
        parse_plans({"free": {"max_input_size": text}}, Path("."))


def test_configured_plans_merge_over_the_defaults_and_keep_order(tmp_path: Path) -> None:
    (tmp_path / "plans.yml").write_text(
        "free: {max_input_size: 1 MB}\nlab: {max_running_jobs: 20, retention_minutes: 1440}\n"
    )
    plans = parse_plans("plans.yml", tmp_path, "lab")
    assert plans.names() == ["free", "premium", "lab"] and plans.default == "lab"
    free = plans.get("free")
    assert free.max_input_size == 1_000_000 and free.max_total_input == FREE.max_total_input
    lab = plans.get("lab")
    assert lab == Plan("lab", None, None, 20, 1440.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"free": {"max_inputs": 1}}, "unknown key"),
        ({"free": {"max_running_jobs": 0}}, "positive"),
        ({"free": {"max_running_jobs": "many"}}, "number"),
        ({"Bad Name": {}}, "invalid plan name"),
        ({"free": [1, 2]}, "mapping"),
        ([1, 2], "mapping"),
    ],
)
def test_bad_plans_are_refused_at_start(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_plans(value, Path("."))


def test_an_unknown_default_plan_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="default_plan 'gold'"):
        parse_plans({}, Path("."), "gold")


def test_unknown_plan_names_the_known_ones() -> None:
    with pytest.raises(InvalidRequestError, match="free, premium"):
        Plans().get("gold")


def test_budget_is_the_tighter_limit() -> None:
    plan = Plan("p", max_input_size=100, max_total_input=250)
    assert budget(plan, 0) is not None and budget(plan, 0).allowed == 100  # type: ignore[union-attr]
    late = budget(plan, 200)
    assert late is not None and (late.limit, late.allowed) == ("max_total_input", 50)
    full = budget(plan, 300)
    assert full is not None and full.allowed == 0
    assert budget(Plan("unlimited"), 10**12) is None


def test_a_known_size_over_the_limit_is_refused_with_the_plan_that_allows_it() -> None:
    plans = Plans()
    with pytest.raises(QuotaExceededError) as refused:
        check_size(plans, FREE, 0, 200_000)
    body = refused.value.to_dict()
    assert refused.value.status == 413
    assert {k: body[k] for k in ("limit", "limit_bytes", "size", "plan", "allowed_by")} == {
        "limit": "max_input_size",
        "limit_bytes": 150_000,
        "size": 200_000,
        "plan": "free",
        "allowed_by": "premium",
    }
    assert "premium" in str(body["error"])


def test_the_total_limit_counts_what_the_job_holds() -> None:
    plans = Plans()
    assert check_size(plans, FREE, 900_000, 100_000) is not None  # exactly at the limit
    with pytest.raises(QuotaExceededError) as refused:
        check_size(plans, FREE, 900_000, 100_001)
    assert refused.value.limit == "max_total_input"


def test_no_plan_allowing_it_is_said_too() -> None:
    plans = Plans((Plan("only", max_input_size=10),), "only")
    with pytest.raises(QuotaExceededError) as refused:
        check_size(plans, plans.get("only"), 0, 11)
    assert refused.value.allowed_by is None and "allows it" not in refused.value.message


def test_an_unsized_upload_gets_its_budget() -> None:
    found = check_size(Plans(), FREE, 0, None)
    assert found is not None and found.allowed == 150_000
    assert found.refuse(Plans(), 150_001).size == 150_001


def test_plans_come_from_server_ini_or_app_yml(tmp_path: Path) -> None:
    """``plans`` names a YAML file in server.ini; app.yml may hold the mapping itself."""
    from lwr import config_yaml
    from lwr.config import load_app_config

    (tmp_path / "plans.yml").write_text("free: {max_input_size: 1 KB}\n")
    from_ini = load_app_config({"plans": "plans.yml", "default_plan": "premium"}, here=tmp_path)
    assert from_ini.plans.get("free").max_input_size == 1000
    assert from_ini.plans.default == "premium"
    (tmp_path / "app.yml").write_text("plans:\n  lab: {max_running_jobs: 3}\n")
    from_yml = config_yaml.load({"app_config": "app.yml"}, tmp_path)
    assert from_yml.plans.get("lab").max_running_jobs == 3
    assert load_app_config({}, here=tmp_path).plans == Plans()
