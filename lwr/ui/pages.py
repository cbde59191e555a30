"""The dashboard's pages: sign-in, job list, job details, downloads, submit, profile.

Handlers read and act through the service's own calls (``Users``, ``list_jobs``/``describe``,
the managers' records and directories, the API controllers for submits); the gate in
:mod:`lwr.ui.web` has already settled who the caller is and checked the CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from webob import Request, Response

from lwr.config import DEFAULT_MANAGER
from lwr.errors import AuthorizationError, InvalidRequestError, NotFoundError
from lwr.managers import namespace, safe_path
from lwr.managers.base import JobState
from lwr.service.listing import describe, list_jobs, query_for
from lwr.service.retention.access import check_download
from lwr.ui import submit as submitting
from lwr.ui import views
from lwr.ui.web import (
    PREFIX,
    View,
    form_text,
    posted,
    redirect,
    sign_in,
    sign_out,
    signed_out,
)
from lwr.web.controllers import notify
from lwr.web.controllers.files import CHUNK

log = logging.getLogger(__name__)

PAGE_SIZE = 20
STATES = [state.value for state in JobState]


def home(view: View) -> Response:
    return redirect(view.request, f"{PREFIX}/jobs")


def sign_in_form(view: View) -> Response:
    if view.session.signed_in:
        return redirect(view.request, f"{PREFIX}/jobs")
    return view.render("sign_in.html", next=_next(view.request.GET.get("next")))


def sign_in_submit(view: View) -> Response:
    """Sign in with a user's token or the admin token (``private_token``); 403 page otherwise."""
    token = form_text(view.request, "token").strip()
    users = view.ctx.app.users
    user = users.authenticate(token) if token else None
    admin = users.admin_token
    if user is not None:
        who = user.name
    elif token and admin and hmac.compare_digest(token.encode(), admin.encode()):
        who = ""
    else:
        log.info("dashboard: a sign-in with an unknown token was refused")
        raise AuthorizationError("that token is not valid here")
    session = sign_in(view, who)
    return redirect(view.request, _next(form_text(view.request, "next")), session)


def sign_out_submit(view: View) -> Response:
    sign_out(view)
    return signed_out(view.request, f"{PREFIX}/sign-in")


def job_list(view: View) -> Response:
    state = view.request.GET.get("state") or None
    if state is not None and state not in STATES:
        raise InvalidRequestError(f"unknown state {state!r}")
    query = query_for(
        view.caller, None, state, str(PAGE_SIZE), view.request.GET.get("page_token") or None
    )
    page = list_jobs(view.ctx.app.store, query, view.caller.is_admin)
    items = [views.job_item(job) for job in page["jobs"]]
    return view.render(
        "jobs.html", jobs=items, state=state, states=STATES, next_page=page["next_page_token"]
    )


def job_details(view: View) -> Response:
    record, manager = _record(view)
    files = view.ctx.app.store.files_of([record])[(record.manager, record.job_id)]
    job = views.job_item(describe(record, files, view.caller.is_admin))
    log_streams: dict[str, Any] = {}
    outputs: list[str] = []
    if record.state.is_final:
        status = manager.status_of(record)
        log_streams = {"stdout": status.get("stdout", ""), "stderr": status.get("stderr", "")}
        log_streams["returncode"] = status.get("returncode")
    if job["results_available"] and not job["archived"]:
        outputs = manager.directory(record.job_id).contents("outputs")
    return view.render(
        "job.html", job=job, log=log_streams, outputs=outputs, link=views.job_query(job)
    )


def download(view: View) -> Response:
    """An input or an output of one of the caller's jobs, read without leaving the job."""
    record, manager = _record(view)
    file_type = view.request.GET.get("type", "")
    name = view.request.GET.get("name", "")
    if file_type not in ("input", "output") or not name:
        raise InvalidRequestError("type must be input or output, and name is required")
    # archived results: the API's 409, rendered with the plan that restores them
    check_download(view.ctx.app.retention.table, view.ctx.app.users, record, file_type, name)
    directory = manager.directory(record.job_id)
    for_output = file_type == "output"
    directory.resolve(file_type, name, for_output=for_output)
    try:
        with directory.locate(file_type, name, for_output=for_output) as found:
            handle = os.fdopen(safe_path.open_regular(found), "rb")
    except (NotFoundError, safe_path.NamesADirectoryError):
        raise NotFoundError(f"{file_type} {name!r} does not exist") from None
    response = Response(content_type="application/octet-stream")
    response.content_disposition = views.attachment(name)
    response.content_length = os.fstat(handle.fileno()).st_size
    response.app_iter = _iterate(handle)
    return response


def _iterate(handle: Any) -> Any:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def submit_form(view: View) -> Response:
    return view.render("submit.html", tools=sorted(view.ctx.app.config.ui_tools))


#: the submit form's size check, before its body is read (see lwr.ui.submit)
submit_precheck = submitting.precheck


def submit_post(view: View) -> Response:
    upload: Any = posted(view.request).get("file")
    if isinstance(upload, str) or upload is None or not upload.filename:
        raise InvalidRequestError("choose a file to upload")
    name = os.path.basename(upload.filename.replace("\\", "/"))
    job_id = submitting.run_tool(view, form_text(view.request, "tool"), name, upload.file)
    return redirect(view.request, f"{PREFIX}/jobs/{job_id}")


def profile(view: View, webhook_secret: str | None = None) -> Response:
    app = view.ctx.app
    user = view.caller.user
    plan = app.users.plan_of(user) if user is not None else None
    plans = [views.plan_row(p) for p in app.users.plans.plans]
    channels = notify.show(view.ctx)["notifications"] if user is not None else None
    return view.render(
        "profile.html",
        user=user,
        plan=plan,
        plans=plans,
        notifications=channels,
        email_possible=app.config.notify.smtp.host is not None,
        webhook_secret=webhook_secret,
    )


def change_notifications(view: View) -> Response:
    """The user's notification channels, through the API's own route (lwr.web.controllers)."""
    fields = {
        name: form_text(view.request, name).strip()
        for name in ("email", "webhook_url")
        if name in posted(view.request)
    }
    request = Request.blank(f"/profile/notifications?{urlencode(fields)}", method="PUT")
    answer = notify.update(replace(view.ctx, request=request))
    return profile(view, answer.get("webhook_secret"))


def change_plan(view: View) -> Response:
    """The user moves themself to another plan (no payment is taken: see docs/service.md)."""
    user = view.caller.user
    if user is None:
        raise InvalidRequestError("the admin token has no plan; use lwr users set-plan")
    view.ctx.app.users.set_plan(user.name, form_text(view.request, "plan"))
    return redirect(view.request, f"{PREFIX}/profile")


def _record(view: View) -> tuple[Any, Any]:
    """The job the URL names, in the caller's namespace (the admin may name an ``owner``)."""
    app = view.ctx.app
    named = view.request.GET.get("manager") or None
    # without a manager (a notification's link) every manager is looked in, the default first
    managers = (
        [app.manager(named)]
        if named
        else sorted(app.managers.values(), key=lambda m: m.name != DEFAULT_MANAGER)
    )
    owner = view.caller.owner
    wanted = view.request.GET.get("owner")
    if wanted and view.caller.is_admin:
        owner = wanted
    job_id = namespace.scoped(owner, view.ctx.args["job_id"])
    for manager in managers:
        record = manager.find(job_id)
        if record is not None:
            return record, manager
    raise NotFoundError(f"unknown job {view.ctx.args['job_id']!r}")


def _next(target: str | None) -> str:
    """Where to go after sign-in: only a dashboard path (never another site)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        if "\\" not in target and "\n" not in target and "\r" not in target:
            return target
    return f"{PREFIX}/jobs"
