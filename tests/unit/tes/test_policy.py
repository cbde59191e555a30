"""What a service user's TES task may name, and how its inputs are counted against the plan."""

from __future__ import annotations

from typing import Any

import pytest

from lwr.errors import QuotaExceededError
from lwr.service.plans import Plan, Plans
from lwr.tes import policy
from lwr.tes.models import parse_task

FREE = Plan("free", max_input_size=100, max_total_input=150)
PLANS = Plans((FREE, Plan("premium")), "free")
QUOTA = policy.Quota("alice", FREE, PLANS)


def task(
    inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None
) -> Any:
    return parse_task(
        {
            "executors": [{"image": "x", "command": ["true"]}],
            "inputs": inputs or [],
            "outputs": outputs or [],
        }
    )


@pytest.mark.parametrize(
    "url", ["file:///srv/data", "/srv/data", "s3://bucket/key", "S3://bucket/key"]
)
def test_server_side_storage_is_refused_to_users_only(url: str) -> None:
    for refused in refusals(url):
        assert refused.status == 403
        assert refused.to_dict()["setting"] == "service users' storage"


def refusals(url: str) -> list[policy.TesRefusedError]:
    """A user's task naming ``url`` as an input, then as an output: each refused, with what.

    The same tasks of the admin token (no quota) pass, checked here for every caller.
    """
    found = []
    for named in (
        task(inputs=[{"path": "/d/x", "url": url}]),
        task(outputs=[{"path": "/d/x", "url": url}]),
    ):
        with pytest.raises(policy.TesRefusedError) as refused:
            policy.check_storage(named, QUOTA)
        found.append(refused.value)
        policy.check_storage(named, None)  # the admin token's task is as before
    return found


def test_content_and_http_are_a_users() -> None:
    named = task(
        inputs=[
            {"path": "/d/a", "content": "x"},
            {"path": "/d/b", "url": "https://example.org/b"},
        ],
        outputs=[{"path": "/d/a", "url": "http://example.org/a"}],
    )
    policy.check_storage(named, QUOTA)


def test_content_is_measured_file_by_file_and_together() -> None:
    policy.check_content(task(inputs=[{"path": "/a", "content": "x" * 100}]), QUOTA)
    with pytest.raises(QuotaExceededError) as one:
        policy.check_content(task(inputs=[{"path": "/a", "content": "é" * 51}]), QUOTA)  # 102 B
    assert one.value.limit == "max_input_size" and one.value.allowed_by == "premium"
    two = [{"path": f"/{n}", "content": "x" * 80} for n in "ab"]
    with pytest.raises(QuotaExceededError) as both:
        policy.check_content(task(inputs=two), QUOTA)
    assert both.value.limit == "max_total_input"
    policy.check_content(task(inputs=two), None)


def test_the_budget_stops_a_file_and_a_retry_starts_it_again() -> None:
    budget = policy.InputBudget(QUOTA)
    budget.start("input 0 (/a)")
    take = budget.attempt()
    take(90)
    take = budget.attempt()  # a retry: the 90 bytes of the failed try no longer count
    take(90)
    assert budget.total == 90
    budget.start("input 1 (/b)")
    take = budget.attempt()
    take(60)  # 150 in all: the total limit, reached but not passed
    with pytest.raises(policy.InputQuotaError) as stopped:
        take(1)
    assert "input 1 (/b)" in stopped.value.message
    assert "max_total_input" in stopped.value.message and "plan 'free'" in stopped.value.message
