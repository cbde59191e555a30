"""The TES 1.1 controllers, served under ``/ga4gh/tes/v1`` and ``/managers/{name}/ga4gh/tes/v1``.

Each handler reads the request (a JSON body for ``POST /tasks``, query parameters otherwise),
names the caller (:mod:`lwr.tes.owner`) and calls :mod:`lwr.tes.service`. Errors are the usual
typed LWR errors; the dispatcher answers them with the TES error shape (:func:`error_body`).
"""

from __future__ import annotations

from typing import Any

from lwr import jsondepth
from lwr.egress import EgressPolicy
from lwr.errors import PayloadTooLargeError
from lwr.tes import policy, resources, runtime, service
from lwr.tes.owner import caller
from lwr.tes.staging import schemes
from lwr.tes.views import check_view
from lwr.web.request import Context

PREFIX = "/ga4gh/tes/v1"
#: a task document with its content literals; far above the spec's 128 KiB per content
MAX_BODY = 16 * 1024 * 1024


def error_body(status: int, message: str) -> dict[str, Any]:
    """The error answer of a TES route: LWR's ``error`` plus the ``code``/``message`` pair that
    TES servers answer (grpc-gateway's shape, as Funnel's)."""
    return {"error": message, "message": message, "code": status}


def service_info(ctx: Context) -> dict[str, Any]:
    """GA4GH service-info with the storage schemes, backend and container runtime."""
    manager = ctx.manager
    backend = manager.backend
    kind = resources.family(backend.type_name, backend.options.get("job_plugin"))
    container = runtime.runtime_of(manager)
    storage = [f"file://{p}" for p in ctx.app.config.remote_copy_allowed_paths]
    storage += [f"{scheme}://" for scheme in schemes() if scheme != "file"]
    images = (
        "executors' images are NOT used: commands run on the host (container_runtime = none)"
        if container == "none"
        else f"executors run in their images with {container}"
    )
    return {
        "id": f"org.lwr.tes.{manager.name}",
        "name": f"LWR TES ({manager.name})",
        "type": {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
        # py-tes refuses keys the spec does not name: the backend and runtime are said here
        "description": (
            f"LWR manager {manager.name!r} (backend {backend.type_name}, resources {kind}, "
            f"container_runtime = {container}); {images}. Every manager of this server serves "
            f"TES at /managers/NAME{PREFIX}: {_backends(ctx)}"
        ),
        "organization": {"name": "LWR", "url": ctx.request.application_url},
        "version": ctx.app.version,
        "storage": storage,
        "tesResources_backend_parameters": list(resources.BACKEND_PARAMETERS.get(kind, ())),
    }


def _backends(ctx: Context) -> str:
    """``name (type)`` of every manager, for service-info's description."""
    return ", ".join(
        f"{name} ({found.backend.type_name})" for name, found in sorted(ctx.app.managers.items())
    )


def create_task(ctx: Context) -> dict[str, Any]:
    return service.create(ctx.manager, _json_body(ctx), _caller(ctx), _quota(ctx))


def _quota(ctx: Context) -> policy.Quota | None:
    """The service user's plan their task is held to (None for the admin token)."""
    user = ctx.caller.user
    if user is None:
        return None
    users = ctx.app.users
    egress = EgressPolicy(ctx.app.config.tes_user_allowed_networks)
    storage = ctx.app.config.tes_user_storage
    return policy.Quota(user.name, users.plan_of(user), users.plans, egress, storage)


def list_tasks(ctx: Context) -> dict[str, Any]:
    get = ctx.request.GET
    wanted = service.filters(
        ctx.param("name_prefix"), ctx.param("state"), get.getall("tag_key"), get.getall("tag_value")
    )
    return service.list_tasks(
        ctx.app.store,
        ctx.manager,
        _caller(ctx),
        wanted,
        check_view(ctx.param("view")),
        service.page_size(ctx.param("page_size")),
        ctx.param("page_token"),
    )


def get_task(ctx: Context) -> dict[str, Any]:
    view = check_view(ctx.param("view"))
    return service.get(ctx.manager, ctx.args["task_id"], _caller(ctx), view)


def cancel_task(ctx: Context) -> dict[str, Any]:
    return service.cancel(ctx.manager, ctx.args["task_id"], _caller(ctx))


def _caller(ctx: Context) -> str:
    return caller(ctx.request, ctx.app.config.private_token, ctx.caller.owner)


def _json_body(ctx: Context) -> Any:
    length = ctx.request.content_length
    if length is not None and length > MAX_BODY:
        raise PayloadTooLargeError(f"a task document is limited to {MAX_BODY} bytes")
    raw = ctx.request.body_file.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise PayloadTooLargeError(f"a task document is limited to {MAX_BODY} bytes")
    return jsondepth.loads(raw, "the task document")  # malformed or too deep: 400
