"""The per-request context handed to controllers, with the protocol's parameter conventions.

All parameters travel in the query string (never read the body as a form: it is the uploaded
file); structured ones are JSON strings. Helpers here turn a missing or malformed parameter into a
400 with the parameter's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webob import Request

from lwr import jsondepth
from lwr.app import LwrApp
from lwr.errors import InvalidRequestError
from lwr.managers import namespace
from lwr.managers.stateful import StatefulManager
from lwr.service.users import ADMIN, Caller


@dataclass
class Context:
    request: Request
    app: LwrApp
    args: dict[str, str]
    #: who sent the request (lwr.service.users): the admin token or a service user
    caller: Caller = ADMIN

    @property
    def manager(self) -> StatefulManager:
        return self.app.manager(self.args.get("manager"))

    @property
    def job_id(self) -> str:
        """The stored id of the job the URL names, in the caller's namespace.

        This is where job ownership is decided, once for every route: a service user's ids are
        stored as ``<user>~<id>`` (lwr.managers.namespace), so a user can only ever name their
        own jobs; another user's job is simply not there, and answers as an unknown one does.
        """
        return namespace.scoped(self.caller.owner, self.args["job_id"])

    @property
    def client_job_id(self) -> str:
        """The job id as the client sent it."""
        return self.args["job_id"]

    def param(self, name: str, default: str | None = None) -> str | None:
        """A query-string parameter (the last one if repeated), or ``default``."""
        values = self.request.GET.getall(name)
        if not values:
            return default
        value = values[-1]
        if "\x00" in value:
            raise InvalidRequestError(f"parameter {name!r} must not contain NUL bytes")
        return value

    def required(self, name: str) -> str:
        value = self.param(name)
        if value is None or value == "":
            raise InvalidRequestError(f"missing required parameter {name!r}")
        return value

    def json_param(self, name: str, default: Any = None) -> Any:
        """A JSON-encoded parameter; ``'null'`` and absence both give ``default``."""
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        value = jsondepth.loads(raw, f"parameter {name!r}")
        return default if value is None else value
