"""The dashboard's one gate: session, sign-in, CSRF and error pages, around every page handler.

Dashboard routes are public in the route table (:mod:`lwr.web.routes`): a browser carries a
session cookie, not a token. This module is where that cookie is turned into a
:class:`~lwr.service.users.Caller`, for every page, so no handler can forget it:

- a page that needs sign-in redirects to the sign-in page without a live session;
- every POST must carry the session's CSRF token (``csrf_token``), else a 403 page;
- a signed-in user who has since been revoked is signed out;
- errors become HTML pages with their status; anything unexpected is logged and shown as a
  500 page that reveals nothing (never a traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from webob import Request, Response

from lwr.app import LwrApp
from lwr.errors import AuthorizationError, InvalidRequestError, LwrError, NotFoundError
from lwr.service.users import ADMIN, Caller
from lwr.ui.sessions import Session, SessionStore, clear_cookie, new_id, set_cookie
from lwr.web.request import Context

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
PREFIX = "/ui"
#: the pages have no script: none may run, whatever a job's output holds
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def sessions(app: LwrApp) -> SessionStore:
    """The app's sessions: signed-in ones are rows of its database (``app.users.sessions``)."""
    return SessionStore(app.users.sessions, app.users.admin_token)


@dataclass
class View:
    """What a page handler gets: the API's context (with the signed-in caller) and the session."""

    ctx: Context
    session: Session

    @property
    def caller(self) -> Caller:
        return self.ctx.caller

    @property
    def request(self) -> Request:
        return self.ctx.request

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        """A page, with the layout's common values (who is signed in, the CSRF token)."""
        return render(self.request, template, status, self.session, self.caller, **values)


PageHandler = Callable[[View], Response]


def page(
    handler: PageHandler,
    signed_in: bool = True,
    before_body: Callable[[View], None] | None = None,
) -> Callable[[Context], Response]:
    """Wrap a page handler with the session, sign-in and CSRF checks and HTML error pages.

    ``before_body`` runs after sign-in and before the form is read (and spooled) for the CSRF
    check: the submit form's size check (lwr.ui.submit.precheck).
    """

    def serve(ctx: Context) -> Response:
        store = sessions(ctx.app)
        # until the session is read (the database may fail it): signed out, no cookie to set
        session, fresh = Session(new_id(), ended=True), False
        try:
            session, fresh = store.open(ctx.request)
            response = _serve(handler, ctx, session, store, signed_in, before_body)
        except LwrError as exc:
            response = error_page(ctx, session, exc.status, exc.message, exc)
        except Exception:
            log.exception("dashboard: unexpected error serving %s", ctx.request.path_info)
            response = error_page(ctx, session, 500, "internal server error")
        if fresh and not session.ended:
            set_cookie(response, ctx.request, session)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    serve.__doc__ = handler.__doc__
    return serve


def _serve(
    handler: PageHandler,
    ctx: Context,
    session: Session,
    store: SessionStore,
    signed_in: bool,
    before_body: Callable[[View], None] | None,
) -> Response:
    caller = _caller(ctx.app, session)
    if signed_in and caller is None:
        return redirect(ctx.request, f"{PREFIX}/sign-in?next={quote(ctx.request.path_qs)}")
    view = View(replace(ctx, caller=caller or ADMIN), session)
    if before_body is not None:
        before_body(view)
    if ctx.request.method == "POST":
        check_csrf(ctx.request, session)
    return handler(view)


def check_csrf(request: Request, session: Session) -> None:
    """Every POST carries the session's CSRF token, or is refused (403) before it acts."""
    if not session.csrf_matches(form_text(request, "csrf_token")):
        raise AuthorizationError(
            "the form's security token is missing or out of date; reload the page and retry"
        )


def form_text(request: Request, name: str) -> str:
    """A text field of the posted form ("" when missing, or when a file was sent in its place)."""
    value = posted(request).get(name)
    return value if isinstance(value, str) else ""


def posted(request: Request) -> Any:
    """The posted form; a body WebOb cannot parse (a multipart type without a boundary, a
    broken multipart body) is the client's mistake, a 400 page, not a 500 one."""
    try:
        return request.POST
    except ValueError as exc:
        raise InvalidRequestError(f"the form cannot be read: {exc}") from None


def _caller(app: LwrApp, session: Session) -> Caller | None:
    """Who the session is signed in as, looked up afresh (a revoked user is signed out)."""
    if session.who is None:
        return None
    if session.who == "":
        return ADMIN
    try:
        user = app.users.get(session.who)
    except NotFoundError:
        user = None
    if user is None or not user.active:
        sessions(app).drop(session)  # revoked: signed out (the revoke deleted the row already)
        return None
    return Caller(user)


def sign_in(view: View, who: str) -> Session:
    """Replace the session by a signed-in one (a new id: no fixation)."""
    store = sessions(view.ctx.app)
    store.drop(view.session)
    return store.create(who)


def sign_out(view: View) -> None:
    sessions(view.ctx.app).drop(view.session)


def redirect(request: Request, location: str, session: Session | None = None) -> Response:
    """303 See Other (a POST answered by a GET of ``location``), optionally with a new cookie."""
    response = Response(status=303, location=location)
    if session is not None:
        set_cookie(response, request, session)
    return response


def signed_out(request: Request, location: str) -> Response:
    response = Response(status=303, location=location)
    clear_cookie(response, request)
    return response


def render(
    request: Request,
    template: str,
    status: int,
    session: Session | None,
    caller: Caller | None,
    **values: Any,
) -> Response:
    body = _ENV.get_template(template).render(
        csrf_token=session.csrf if session else "",
        signed_in=session is not None and session.signed_in,
        caller=caller,
        prefix=PREFIX,
        **values,
    )
    return Response(body=body.encode(), status=status, content_type="text/html", charset="utf-8")


def error_page(
    ctx: Context,
    session: Session,
    status: int,
    message: str,
    error: LwrError | None = None,
) -> Response:
    """An error as a page: its status, its message (escaped) and, for a plan limit, an upgrade."""
    allowed_by = getattr(error, "allowed_by", None) if error is not None else None
    quota = getattr(error, "limit", None) is not None
    upgrade_to = getattr(error, "upgrade_to", None)  # archived results (ResultsArchivedError)
    restore_by = upgrade_to[0] if upgrade_to else None
    try:
        caller = _caller(ctx.app, session)
    except Exception:  # the page that says something failed must not fail too
        caller = None
    return render(
        ctx.request,
        "error.html",
        status,
        session,
        caller,
        code=status,
        message=message,
        quota=quota,
        allowed_by=allowed_by,
        archived=upgrade_to is not None,
        restore_by=restore_by,
    )
