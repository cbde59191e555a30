"""What the pages show: readable times and sizes, safe download names, sign-in's next page."""

from __future__ import annotations

import pytest

from lwr.service.plans import DEFAULT_PLANS
from lwr.ui.pages import _next
from lwr.ui.views import attachment, human_size, human_time, plan_row


def test_times_are_readable_with_their_age() -> None:
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert human_time("2027-01-15T07:57:00Z", now) == "2027-01-15 07:57:00 UTC (3 minutes ago)"
    assert human_time("2027-01-14T08:00:00Z", now).endswith("(1 day ago)")
    assert human_time("2027-01-15T07:59:58Z", now).endswith("(2 seconds ago)")
    assert human_time(None) == "—"


def test_sizes_use_the_plans_units() -> None:
    assert [human_size(n) for n in (12, 150_000, 2_500_000, None)] == [
        "12 B",
        "150.0 KB",
        "2.5 MB",
        "unlimited",
    ]
    assert plan_row(DEFAULT_PLANS[0])["max_input_size"] == "150.0 KB"
    assert plan_row(DEFAULT_PLANS[1])["retention"] == "forever"


def test_download_names_cannot_break_the_header() -> None:
    header = attachment('dir/a"b\r\nX-Evil: 1 é.txt')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="a_b__X-Evil: 1 _.txt"')
    assert header.endswith("filename*=UTF-8''a%22b%0D%0AX-Evil%3A%201%20%C3%A9.txt")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/jobs?state=complete", "/ui/jobs?state=complete"),
        ("/ui/profile", "/ui/profile"),
        ("https://evil.example/ui/", "/ui/jobs"),
        ("//evil.example/ui/", "/ui/jobs"),
        ("/ui\\@evil", "/ui/jobs"),
        ("/ui/\\\\evil.example", "/ui/jobs"),
        ("/jobs", "/ui/jobs"),
        (None, "/ui/jobs"),
    ],
)
def test_sign_in_returns_only_to_a_dashboard_page(target: str | None, expected: str) -> None:
    assert _next(target) == expected
