"""The submit form's job: setup, upload and submit through the API's own controllers.

A dashboard job is an API job: the same controller functions (:mod:`lwr.web.controllers`) are
called with the signed-in caller, so the job lands in the caller's namespace, the upload is
checked against their plan before it is stored (413 with the plan that would allow it), and the
job is queued behind their running limit like any other.

The browser sends the file inside a multipart form, which WebOb spools to a temporary file
before the form can be read; so that spool cannot be used to push past a plan, a body larger
than the plan's ``max_input_size`` plus :data:`FORM_OVERHEAD` is refused from its
``Content-Length`` before a byte is read. The file itself then goes through the upload route's
exact check.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any, BinaryIO
from urllib.parse import urlencode

from webob import Request

from lwr.errors import InvalidRequestError, LwrError, PayloadTooLargeError, QuotaExceededError
from lwr.service.plans import check_size
from lwr.ui.tools import command_line
from lwr.ui.web import View
from lwr.web.controllers import files, jobs
from lwr.web.request import Context

log = logging.getLogger(__name__)

#: the multipart form's bytes besides the file: boundaries, headers, the CSRF token, the tool
FORM_OVERHEAD = 8 * 1024


def precheck(view: View) -> None:
    """Refuse a form body that cannot fit the caller's plan, before WebOb reads (spools) it."""
    length = view.request.content_length
    if length is None:
        raise InvalidRequestError("the submit form needs a Content-Length")
    limit = view.ctx.app.config.max_upload_size
    if limit is not None and length > limit + FORM_OVERHEAD:
        raise PayloadTooLargeError(f"upload of {length} bytes exceeds max_upload_size {limit}")
    user = view.caller.user
    if user is None:
        return
    users = view.ctx.app.users
    plan = users.plan_of(user)
    if plan.max_input_size is not None and length > plan.max_input_size + FORM_OVERHEAD:
        try:
            check_size(users.plans, plan, 0, length - FORM_OVERHEAD)
        except QuotaExceededError as exc:  # the file's exact size is unknown: a lower bound
            exc.message = exc.message.replace("upload of ", "upload of at least ", 1)
            raise


def run_tool(view: View, tool: str, filename: str, data: BinaryIO) -> str:
    """Set up a job, upload ``data`` as input ``filename``, submit the tool; its client id."""
    app = view.ctx.app
    template = app.config.ui_tools.get(tool)
    if template is None:
        raise InvalidRequestError(f"unknown tool {tool!r}")
    requested = f"ui-{secrets.token_hex(8)}"
    answer = jobs.setup(_api(view, requested, {"job_id": requested, "tool_id": tool}))
    job_id = str(answer["job_id"])
    try:
        size = data.seek(0, os.SEEK_END)
        data.seek(0)
        body = {"body_file": data, "content_length": size, "method": "POST"}
        uploaded = files.upload(_api(view, job_id, {"type": "input", "name": filename}, body))
        command = command_line(template, str(uploaded["path"]), str(answer["outputs_directory"]))
        jobs.submit(_api(view, job_id, {"command_line": command}))
    except LwrError:
        jobs.clean(_api(view, job_id, {}))  # a refused upload leaves no job behind
        raise
    log.info("dashboard: job %s of %s runs tool %s", job_id, view.caller.owner or "admin", tool)
    return job_id


def _api(view: View, job_id: str, query: dict[str, str], body: Any = None) -> Context:
    """The API's context for one internal call, as the signed-in caller."""
    request = Request.blank(f"/jobs/{job_id}?{urlencode(query)}", **(body or {}))
    return Context(request, view.ctx.app, {"job_id": job_id}, view.caller)
