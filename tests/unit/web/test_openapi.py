"""The OpenAPI description (lwr/web/openapi.yaml): valid 3.1, and the route table's twin.

Every route of ``lwr.web.routes.ROUTES`` (at the root and, when per manager, under
``/managers/{manager}/``) must be described and every described operation must be a route, so a
new route cannot land undocumented nor a removed one stay described. The served
``/openapi.json`` is the same document, public like ``/healthz``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
from webob import Request

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.web.controllers import openapi
from lwr.web.dispatch import LwrWsgiApp
from lwr.web.routes import ROUTES, Route

REPO = Path(__file__).resolve().parents[3]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def route_operations(routes: tuple[Route, ...] = ROUTES) -> dict[tuple[str, str], Route]:
    """(METHOD, OpenAPI path) of every route in both of its variants."""
    found = {}
    for route in routes:
        found[(route.method, route.pattern)] = route
        if route.per_manager:
            found[(route.method, "/managers/{manager}" + route.pattern)] = route
    return found


def described_operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def differences(spec: dict[str, Any], routes: tuple[Route, ...] = ROUTES) -> list[str]:
    """Everything that keeps the description and the route table from matching, in words."""
    table, described = route_operations(routes), described_operations(spec)
    problems = [
        f"route {method} {path} is not described in lwr/web/openapi.yaml"
        for method, path in sorted(set(table) - set(described))
    ]
    problems += [
        f"lwr/web/openapi.yaml describes {method} {path}, which is not in lwr/web/routes.py"
        for method, path in sorted(set(described) - set(table))
    ]
    for key in sorted(set(table) & set(described)):
        should = _security_problem(table[key], described[key].get("security"))
        if should:
            problems.append(f"{key[0]} {key[1]}: the description should have {should}")
    return problems


def _security_problem(route: Route, security: list[dict[str, Any]] | None) -> str | None:
    """What the operation's ``security`` should be for the route, if it is not that.

    A route public by configuration (``public`` a function of the config, like ``/metrics``)
    is described with the token optional: ``{}`` beside the schemes.
    """
    if callable(route.public):
        ok = bool(security) and {} in security and len(security) > 1  # type: ignore[operator]
        return None if ok else "optional security ({} beside the token schemes)"
    if route.public != (security == []):
        return "security: [] (public)" if route.public else "no `security: []` (token needed)"
    return None


def test_the_description_is_valid_openapi_3_1() -> None:
    spec = openapi.description()
    assert spec["openapi"].startswith("3.1.")
    validate(spec, cls=OpenAPIV31SpecValidator)


def test_every_route_is_described_and_every_description_is_a_route() -> None:
    problems = differences(openapi.description())
    assert not problems, "\n".join(problems)


def test_a_route_missing_from_either_side_is_named() -> None:
    spec = openapi.description()
    extra = Route("GET", "/jobs/{job_id}/extra", lambda ctx: None)
    dropped = tuple(r for r in ROUTES if r.pattern != "/cache/status")
    assert differences(spec, (*ROUTES, extra)) == [
        "route GET /jobs/{job_id}/extra is not described in lwr/web/openapi.yaml",
        "route GET /managers/{manager}/jobs/{job_id}/extra is not described in "
        "lwr/web/openapi.yaml",
    ]
    assert differences(spec, dropped) == [
        "lwr/web/openapi.yaml describes GET /cache/status, which is not in lwr/web/routes.py",
        "lwr/web/openapi.yaml describes GET /managers/{manager}/cache/status, which is not in "
        "lwr/web/routes.py",
    ]
    public = tuple(Route(r.method, r.pattern, r.handler, public=True) for r in ROUTES[1:3])
    assert differences(spec, (*ROUTES[:1], *public, *ROUTES[3:])) == [
        "POST /jobs: the description should have security: [] (public)",
        "POST /jobs/{job_id}/submit: the description should have security: [] (public)",
        "POST /managers/{manager}/jobs: the description should have security: [] (public)",
        "POST /managers/{manager}/jobs/{job_id}/submit: the description should have "
        "security: [] (public)",
    ]
    by_config = tuple(
        Route(r.method, r.pattern, r.handler, public=lambda config: True, per_manager=False)
        for r in ROUTES
        if r.pattern == "/healthz"
    )
    assert differences(spec, (*by_config, *ROUTES[1:])) == [
        "GET /healthz: the description should have optional security ({} beside the token schemes)"
    ]


def test_docs_copy_is_the_packaged_file() -> None:
    """docs/openapi.yaml is a link to the one in the package (the one the server serves)."""
    docs, packaged = REPO / "docs" / "openapi.yaml", REPO / "lwr" / "web" / "openapi.yaml"
    assert docs.read_bytes() == packaged.read_bytes()
    assert yaml.safe_load(docs.read_text()) == openapi.description()


def test_served_as_json_without_a_token(tmp_path: Path) -> None:
    (tmp_path / "job_managers.ini").write_text("[manager:_default_]\ntype = queued_python\n")
    app = LwrApp(load_app_config({"private_token": "secret"}, here=tmp_path))
    wsgi = LwrWsgiApp(app)
    for path in ("/openapi.json", "/openapi.json/"):
        response = Request.blank(path).get_response(wsgi)  # no token at all
        assert response.status_int == 200, response.text
        assert response.content_type == "application/json"
        assert json.loads(response.body) == openapi.description()
    refused = Request.blank("/managers/_default_/openapi.json").get_response(wsgi)
    assert refused.status_int == 404
    assert Request.blank("/jobs/1/status").get_response(wsgi).status_int == 403
