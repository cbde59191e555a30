"""The explicit route table: every URL the protocol knows, in one place.

Each route exists at the root (the default manager) and under ``/managers/{manager}/``, which is how
``pulsar.client`` selects a named manager. Patterns use ``{name}`` placeholders matching one path
segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lwr.tes import routes as tes
from lwr.ui import routes as ui
from lwr.web.controllers import cache, files, jobs, listing, metrics, notify, openapi, users

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    #: whether the route works without the private token (or a function of the app's config)
    public: bool | Callable[[Any], bool] = False
    #: whether the route is per manager (also served under /managers/{manager}/)
    per_manager: bool = True
    #: whether only the admin token (private_token) may call it, not a service user
    admin: bool = False


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", jobs.healthz, public=True, per_manager=False),
    Route("POST", "/jobs", jobs.setup),
    Route("POST", "/jobs/{job_id}/submit", jobs.submit),
    Route("GET", "/jobs/{job_id}/status", jobs.status),
    Route("PUT", "/jobs/{job_id}/cancel", jobs.cancel),
    Route("DELETE", "/jobs/{job_id}", jobs.clean),
    Route("POST", "/jobs/{job_id}/files", files.upload),
    Route("PUT", "/jobs/{job_id}/files", files.upload),
    Route("GET", "/jobs/{job_id}/files/path", files.path),
    Route("GET", "/jobs/{job_id}/files", files.download),
    Route("GET", "/cache/status", cache.status, admin=True),
    Route("PUT", "/cache", cache.required, admin=True),
    Route("POST", "/cache", cache.insert, admin=True),
    # the shared job service (docs/service.md): listings, and users for the admin token
    Route("GET", "/jobs", listing.jobs),
    Route("GET", "/plans", users.plans, per_manager=False),
    Route("GET", "/users", users.list_users, per_manager=False, admin=True),
    Route("POST", "/users", users.add, per_manager=False, admin=True),
    Route("GET", "/users/{name}", users.show, per_manager=False, admin=True),
    Route("PUT", "/users/{name}/plan", users.set_plan, per_manager=False, admin=True),
    Route("DELETE", "/users/{name}", users.revoke, per_manager=False, admin=True),
    Route("GET", "/profile/notifications", notify.show, per_manager=False),
    Route("PUT", "/profile/notifications", notify.update, per_manager=False),
    # GA4GH TES 1.1 (lwr.tes): the same jobs, another face
    Route("GET", f"{tes.PREFIX}/service-info", tes.service_info, public=True),
    Route("POST", f"{tes.PREFIX}/tasks", tes.create_task),
    Route("GET", f"{tes.PREFIX}/tasks", tes.list_tasks),
    Route("GET", f"{tes.PREFIX}/tasks/{{task_id}}", tes.get_task),
    Route("POST", f"{tes.PREFIX}/tasks/{{task_id}}:cancel", tes.cancel_task),
    Route("GET", "/metrics", metrics.export, public=metrics.is_public, per_manager=False),
    # the dashboard (lwr.ui): public here, signed in by its session cookie in lwr.ui.web
    *(
        Route(method, f"/ui{path}", handler, public=True, per_manager=False)
        for method, path, handler in (
            ("GET", "", ui.home),
            ("GET", "/sign-in", ui.sign_in_form),
            ("POST", "/sign-in", ui.sign_in),
            ("POST", "/sign-out", ui.sign_out),
            ("GET", "/jobs", ui.job_list),
            ("GET", "/jobs/{job_id}", ui.job_details),
            ("GET", "/jobs/{job_id}/files", ui.download),
            ("GET", "/submit", ui.submit_form),
            ("POST", "/submit", ui.submit),
            ("GET", "/profile", ui.profile),
            ("POST", "/profile/plan", ui.change_plan),
            ("POST", "/profile/notifications", ui.change_notifications),
        )
    ),
    # the description of every route here (lwr/web/openapi.yaml; a test keeps the two in step)
    Route("GET", "/openapi.json", openapi.document, public=True, per_manager=False),
)

#: a placeholder's value: one path segment without ':', so ``/tasks/{task_id}`` does not also
#: claim ``/tasks/ID:cancel`` (no job, task or manager name has one)
_SEGMENT = "[^/:]+"


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    regex: re.Pattern[str]


def _compile(route: Route) -> list[CompiledRoute]:
    body = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{_SEGMENT})", route.pattern)
    compiled = [CompiledRoute(route, re.compile(f"^{body}/?$"))]
    if route.per_manager:
        compiled.append(
            CompiledRoute(route, re.compile(f"^/managers/(?P<manager>{_SEGMENT}){body}/?$"))
        )
    return compiled


COMPILED: tuple[CompiledRoute, ...] = tuple(c for route in ROUTES for c in _compile(route))


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """The route for ``method path`` with its URL arguments, or (None, {}, allowed methods)."""
    allowed = []
    for compiled in COMPILED:
        found = compiled.regex.match(path)
        if found is None:
            continue
        if compiled.route.method == method or (method == "HEAD" and compiled.route.method == "GET"):
            return compiled.route, found.groupdict(), []
        allowed.append(compiled.route.method)
    return None, {}, allowed
