"""Job life-cycle routes: setup, submit, status, cancel, clean, and the health check."""

from __future__ import annotations

import logging
from typing import Any

from lwr import trace
from lwr.errors import AuthorizationError, InvalidRequestError, UnknownJobError
from lwr.managers import namespace
from lwr.managers.directory import check_job_id
from lwr.web.request import Context

log = logging.getLogger(__name__)

#: JSON-string parameters of submit, and the type each must decode to
_SUBMIT_JSON: dict[str, type | tuple[type, ...]] = {
    "params": dict,
    "env": list,
    "dependencies_description": dict,
    "remote_staging": dict,
    "setup_params": dict,
    "submit_extras": dict,
    "dynamic_file_sources": list,
    "token_endpoint": dict,
    "cvmfsexec": (dict, str),
}


def healthz(ctx: Context) -> dict[str, Any]:
    return {"status": "ok", "version": ctx.app.version, "managers": sorted(ctx.app.managers)}


def setup(ctx: Context) -> dict[str, Any]:
    requested = check_job_id(ctx.required("job_id"))
    manager = ctx.manager
    job_id = namespace.scoped(ctx.caller.owner, ctx.app.assign_job_id(requested))
    manager.setup(job_id, ctx.param("tool_id"), ctx.param("tool_version"))
    return dict(ctx.app.setup_answer(manager, job_id))


def submit(ctx: Context) -> dict[str, Any]:
    command_line = ctx.required("command_line")
    launch: dict[str, Any] = {"command_line": command_line}
    for name, kind in _SUBMIT_JSON.items():
        value = ctx.json_param(name)
        if value is None:
            continue
        if not isinstance(value, kind):
            raise InvalidRequestError(f"parameter {name!r} has the wrong JSON type")
        launch[name] = value
    _check_server_staging(ctx, launch)
    record = ctx.manager.submit(ctx.job_id, launch)
    return {"job_id": record.client_job_id, "status": record.state.wire}


def _check_server_staging(ctx: Context, launch: dict[str, Any]) -> None:
    """Server-side staging is the admin token's: for a service user it would fetch any size past
    their plan's limits, and read whatever ``remote_copy_allowed_paths`` lets the admin read."""
    stager = ctx.manager.stager
    if ctx.caller.is_admin or stager is None:
        return
    if stager.needs_stage_in(launch) or stager.needs_stage_out(launch):
        raise AuthorizationError(
            "server-side staging (remote_staging) is for the admin token; upload the inputs"
        )


def status(ctx: Context) -> dict[str, Any]:
    """The status dictionary; an unknown job answers 200 ``lost`` so Galaxy stops retrying."""
    manager = ctx.manager
    try:
        answer = manager.status(ctx.job_id)
    except UnknownJobError as exc:
        log.info("status of unknown job %s/%s: answering lost", manager.name, ctx.job_id)
        return {
            "job_id": ctx.client_job_id,
            "complete": "true",
            "status": "lost",
            "returncode": None,
            "stdout": "",
            "stderr": f"LWR: {exc.message}",
            "reason": exc.message,
        }
    if answer.get("complete") == "true":
        trace.mark(manager.name, ctx.job_id, "answered complete")
    return answer


def cancel(ctx: Context) -> dict[str, Any]:
    record = ctx.manager.cancel(ctx.job_id)
    return {"job_id": record.client_job_id, "status": record.state.wire}


def clean(ctx: Context) -> dict[str, Any]:
    manager = ctx.manager
    manager.record(ctx.job_id)  # 404 for an unknown job
    manager.clean(ctx.job_id)
    return {"job_id": ctx.client_job_id, "cleaned": True}
