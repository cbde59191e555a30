"""The explicit route table and its matcher."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lwr.web import routes
from lwr.web.controllers import cache, files, jobs
from lwr.web.routes import ROUTES, match

# the URLs pulsar.client calls, with the handler each must reach
PROTOCOL = [
    ("POST", "/jobs", jobs.setup, {}),
    ("POST", "/jobs/42/submit", jobs.submit, {"job_id": "42"}),
    ("GET", "/jobs/42/status", jobs.status, {"job_id": "42"}),
    ("PUT", "/jobs/42/cancel", jobs.cancel, {"job_id": "42"}),
    ("DELETE", "/jobs/42", jobs.clean, {"job_id": "42"}),
    ("POST", "/jobs/42/files", files.upload, {"job_id": "42"}),
    ("PUT", "/jobs/42/files", files.upload, {"job_id": "42"}),
    ("GET", "/jobs/42/files/path", files.path, {"job_id": "42"}),
    ("GET", "/jobs/42/files", files.download, {"job_id": "42"}),
    ("GET", "/cache/status", cache.status, {}),
    ("PUT", "/cache", cache.required, {}),
    ("POST", "/cache", cache.insert, {}),
]


@pytest.mark.parametrize(("method", "path", "handler", "args"), PROTOCOL)
def test_protocol_urls_reach_their_handlers(
    method: str, path: str, handler: object, args: dict[str, str]
) -> None:
    route, found, allowed = match(method, path)
    assert route is not None and route.handler is handler
    assert found == args
    assert allowed == []


@pytest.mark.parametrize(("method", "path", "handler", "args"), PROTOCOL)
def test_every_route_also_lives_under_a_named_manager(
    method: str, path: str, handler: object, args: dict[str, str]
) -> None:
    route, found, _ = match(method, f"/managers/slurm_1{path}")
    assert route is not None and route.handler is handler
    assert found == {"manager": "slurm_1", **args}


@pytest.mark.parametrize(("method", "path", "handler", "args"), PROTOCOL)
def test_a_trailing_slash_is_accepted(
    method: str, path: str, handler: object, args: dict[str, str]
) -> None:
    route, found, _ = match(method, path + "/")
    assert route is not None and route.handler is handler and found == args


def test_public_routes_healthz_the_description_and_tes_service_info() -> None:
    public = []
    for path in ("/healthz", "/openapi.json"):
        route, _, _ = match("GET", path)
        assert route is not None and route.public
        assert match("GET", f"/managers/x{path}")[0] is None
        public.append(route)
    service_info = match("GET", "/ga4gh/tes/v1/service-info")[0]  # GA4GH discovery: public
    listed = [r for r in ROUTES if r.public is True]
    # the dashboard's pages are public here and signed in by their session cookie (lwr.ui.web)
    assert {r for r in listed if not r.pattern.startswith("/ui")} == {*public, service_info}
    assert all(r.handler.__module__ == "lwr.ui.routes" for r in listed if r.pattern[:3] == "/ui")


def test_tes_cancel_route_with_its_colon() -> None:
    route, found, _ = match("POST", "/managers/m/ga4gh/tes/v1/tasks/abc:cancel")
    assert route is not None and found == {"manager": "m", "task_id": "abc"}
    assert route.pattern.endswith(":cancel")
    assert match("POST", "/ga4gh/tes/v1/tasks/abc")[2] == ["GET"]
    # found by fuzzing: GET /tasks/{task_id} also matched "abc:cancel", so a wrong method there
    # was answered 405 with "Allow: GET, POST"
    assert match("GET", "/ga4gh/tes/v1/tasks/abc:cancel") == (None, {}, ["POST"])
    assert match("OPTIONS", "/managers/m/ga4gh/tes/v1/tasks/abc:cancel")[2] == ["POST"]


def test_metrics_is_public_unless_the_config_asks_for_the_token() -> None:
    from lwr.pool.settings import MetricsConfig

    route, _, _ = match("GET", "/metrics")
    assert route is not None and callable(route.public) and not route.per_manager
    assert route.public(SimpleNamespace(metrics=MetricsConfig()))
    assert not route.public(SimpleNamespace(metrics=MetricsConfig(require_token=True)))


def test_head_is_served_by_get() -> None:
    route, found, _ = match("HEAD", "/jobs/7/status")
    assert route is not None and route.handler is jobs.status and found == {"job_id": "7"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/jobs", ["GET", "POST"]),
        ("DELETE", "/jobs/1/files", ["GET", "POST", "PUT"]),
        ("POST", "/jobs/1", ["DELETE"]),
        ("GET", "/cache", ["POST", "PUT"]),
        ("POST", "/managers/m/jobs/1/status", ["GET"]),
    ],
)
def test_wrong_method_lists_the_allowed_ones(method: str, path: str, allowed: list[str]) -> None:
    route, found, methods = match(method, path)
    assert route is None and found == {}
    assert sorted(set(methods)) == allowed


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        "/job",
        "/jobs/1/2/status",
        "/jobs//status",
        "/jobs/1/statusx",
        "/managers/jobs",
        "/managers//jobs",
        "/jobs/1/files/path/extra",
        "/JOBS",
    ],
)
def test_unknown_paths_match_nothing(path: str) -> None:
    assert match("GET", path) == (None, {}, [])
    assert match("POST", path) == (None, {}, [])


def test_a_job_id_is_exactly_one_segment() -> None:
    route, found, _ = match("GET", "/jobs/a.b-c_d/status")
    assert route is not None and found == {"job_id": "a.b-c_d"}
    assert match("GET", "/jobs/a/b/status")[0] is None


def test_each_method_and_pattern_is_declared_once() -> None:
    keys = [(r.method, r.pattern) for r in ROUTES]
    assert len(keys) == len(set(keys))
    assert len(routes.COMPILED) == sum(2 if r.per_manager else 1 for r in ROUTES)
