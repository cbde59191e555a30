"""The WSGI application: route, authorise, call the controller, map every error to JSON.

This is the one place where errors become HTTP answers: an :class:`~lwr.errors.LwrError` answers its
own status with ``{"error": ...}``; anything else is logged with its traceback and answered 500 with
a JSON body that reveals nothing of the server's internals. Access lines are logged here too, with
the private token redacted.
"""

from __future__ import annotations

import errno
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from webob import Request, Response

from lwr import logsafe, trace
from lwr.app import LwrApp
from lwr.errors import (
    AuthorizationError,
    IdentityServiceError,
    LwrError,
    NameTooLongError,
    NotFoundError,
    UserAuthError,
)
from lwr.service.users import ADMIN, Caller
from lwr.tes import routes as tes_routes
from lwr.web import routes
from lwr.web.request import Context

log = logging.getLogger(__name__)
access_log = logging.getLogger("lwr.access")


class LwrWsgiApp:
    """A WSGI callable serving the protocol for one :class:`LwrApp`."""

    def __init__(self, app: LwrApp) -> None:
        self.app = app
        self.lwr_config = app.config  # read by lwr.web.server for ssl_pem
        logsafe.install()  # no client string reaches a log line unescaped

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        started = time.perf_counter()
        request = Request(environ)
        response = self.handle(request)
        if self.app.metrics is not None:
            route = environ.get("lwr.route", "unmatched")
            self.app.metrics.observe_request(route, request.method, response.status_int)
        if access_log.isEnabledFor(logging.INFO):  # off in the sample: redacting is not free
            access_log.info(
                "%s %s %s %d %.1fms",
                request.client_addr,
                request.method,
                redact(_raw_path_qs(environ)),
                response.status_int,
                (time.perf_counter() - started) * 1000,
            )
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        response = self._handle(request)
        if response.status_int >= 400 and tes_routes.PREFIX in request.environ.get("PATH_INFO", ""):
            body = response.json_body  # its details (a 413's limit and plan...) are kept
            response.json_body = {
                **body,
                **tes_routes.error_body(response.status_int, body.get("error", "")),
            }  # TES clients read message/code; LWR's "error" is kept
        return response

    def _handle(self, request: Request) -> Response:
        try:
            request.path_info, request.GET  # noqa: B018 - decode both once, here
        except UnicodeDecodeError:
            return error_response(400, "the request's path or query string is not valid UTF-8")
        try:
            return self.route(request)
        except LwrError as exc:
            if exc.status >= 500:
                log.error("%s %s failed: %s", request.method, request.path_info, exc.message)
            response = json_response(exc.to_dict(), exc.status)
            if isinstance(exc, UserAuthError | IdentityServiceError):
                response.status = _status_with_reason(response.status, exc.message)
            if exc.close_connection:
                response.headers["Connection"] = "close"  # lwr.web.framing closes it
            return response
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path_info)
            return error_response(500, "internal server error; see the server log")

    def route(self, request: Request) -> Response:
        """Route, authorise and call the controller; client-caused OS errors become typed."""
        try:
            route, args, allowed = routes.match(request.method, request.path_info)
            if route is None:
                if allowed:
                    return error_response(
                        405, f"method {request.method} not allowed here", allow=allowed
                    )
                raise NotFoundError(f"no such route: {request.path_info}")
            request.environ["lwr.route"] = route.pattern  # the label of /metrics' request count
            public = route.public(self.app.config) if callable(route.public) else route.public
            caller = ADMIN if public else self.authorize(request)
            if route.admin and not caller.is_admin:
                raise AuthorizationError("this route is for the admin token (private_token)")
            ctx = Context(request, self.app, args, caller)
            result = self._traced(route, ctx) if trace.enabled() else route.handler(ctx)
            if isinstance(result, Response):
                return result
            return json_response(result)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # a name the client chose; nothing was created
                raise NameTooLongError(
                    "a name or path in the request is longer than the file system allows"
                ) from None
            raise

    def _traced(self, route: routes.Route, ctx: Context) -> Any:
        """Call the controller between two :mod:`lwr.trace` marks: the request in and answered.

        Only job routes are marked (the job id from the path, or setup's query parameter).
        """
        job_id = ctx.args.get("job_id") or ctx.request.GET.get("job_id")
        manager = ctx.args.get("manager") or "-"
        what = f"{route.method} {route.pattern}"
        if job_id:
            trace.mark(manager, job_id, f"in {what}")
        try:
            return route.handler(ctx)
        finally:
            if job_id:
                trace.mark(manager, job_id, f"out {what}")

    def authorize(self, request: Request) -> Caller:
        """Who is calling: the admin token or a service user (query or ``Authorization``).

        The comparison with ``private_token`` is constant-time; see :meth:`Users.identify`.
        """
        return self.app.users.identify(supplied_token(request))


def supplied_token(request: Request) -> str | None:
    """The token a request carries: ``private_token`` in the query, else a Bearer header."""
    supplied = request.GET.get("private_token")
    if supplied is None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "token") and value:
            supplied = value.strip()
    return supplied


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        body=json.dumps(body).encode("utf-8"),
        status=status,
        content_type="application/json",
        charset=None,  # type: ignore[arg-type]  # WebOb takes None (no charset); stubs say str
    )


def error_response(status: int, message: str, allow: list[str] | None = None) -> Response:
    response = json_response({"error": message}, status)
    if allow:
        response.allow = sorted(set(allow))
    return response


def _status_with_reason(status: str, message: str) -> str:
    """``403 Forbidden: <why>``: Galaxy's client shows only the status line of a refused request.

    (``pulsar.client`` reports an HTTP error by its code and reason phrase, not its body.) The
    phrase is kept to printable ASCII and 200 characters, as a status line must be.
    """
    safe = "".join(c if " " <= c <= "~" else "?" for c in message)[:200]
    return f"{status}: {safe}"


def _raw_path_qs(environ: dict[str, Any]) -> str:
    """The requested path and query as received (never fails to decode, unlike webob's)."""
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


#: query parameters whose values are short, harmless and useful in an access line
_LOGGED_VALUES = frozenset({"job_id", "name", "type", "tool_id", "tool_version"})
#: a shown value with one of these could be a parameter list another parser would split
_SPLITTERS = frozenset("&;=")


def redact(text: str) -> str:
    """Keep a logged URL free of secrets: only a few known-harmless values are shown.

    The query is split by the very parser the request uses (webob's, which separates on both
    ``&`` and ``;`` and decodes names), so a parameter is judged by the name it has for the
    server, however the client wrote it. The private token is the obvious secret, but structured
    parameters carry others (Galaxy's ``files_endpoint`` holds a per-job key inside
    ``remote_staging``), so every value but those in ``_LOGGED_VALUES`` is replaced, and those too
    if they hold a separator. Names and values are logged decoded, with controls escaped.
    """
    path, sep, query = text.partition("?")
    if not sep:
        return logsafe.escape(text)
    try:
        pairs = list(Request({"QUERY_STRING": query}).GET.items())  # the request's own parser
    except (UnicodeDecodeError, UnicodeEncodeError):
        return f"{logsafe.escape(path)}?[undecodable query redacted]"
    shown = []
    for name, value in pairs:
        safe = name in _LOGGED_VALUES and not _SPLITTERS.intersection(value)
        shown.append(f"{logsafe.escape(name)}={logsafe.escape(value) if safe else '[redacted]'}")
    return f"{logsafe.escape(path)}?{'&'.join(shown)}"
