"""UserAuth: run a job through the configured plugins before it is accepted.

The order is Pulsar's: the authentication plugins are asked in turn and the first that names a
user decides (one that refuses stops the search, so a later ``allow_all`` is never a back door);
then the job may run if any authorization plugin allows that user, or if none is configured.
The check runs once per job, when it is submitted (HTTP ``submit`` or the ``setup`` message),
before anything is staged or queued; the private token is checked before it, as always.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lwr.auth.base import AuthRequest, Identity
from lwr.auth.settings import UserAuthConfig, build_plugins
from lwr.errors import UserAuthError

log = logging.getLogger(__name__)


class UserAuth:
    """The configured plugins of one server, shared by all its managers."""

    def __init__(self, config: UserAuthConfig) -> None:
        self.config = config
        self.authentication, self.authorization = build_plugins(config)

    def check(self, manager: str, job_id: str, launch: Mapping[str, Any]) -> Identity | None:
        """The submitter of the job ``launch`` describes, once allowed; else UserAuthError.

        :class:`~lwr.errors.IdentityServiceError` when a service a plugin needs is unreachable.
        """
        request = AuthRequest(manager, job_id, token_endpoint_of(launch))
        identity = self._authenticate(request)
        if self.authorization and not any(p.authorize(identity) for p in self.authorization):
            who = f"user {identity.username!r}" if identity else "an unauthenticated user"
            raise UserAuthError(f"{who} is not allowed to run jobs here", "user_not_allowed")
        if identity is not None:
            log.info(
                "job %s/%s: submitted by %s (user_auth %s)",
                manager,
                job_id,
                identity.username,
                identity.method,
            )
        return identity

    def _authenticate(self, request: AuthRequest) -> Identity | None:
        if not self.authentication:
            return None
        for plugin in self.authentication:
            identity = plugin.authenticate(request)
            if identity is not None:
                return identity
        raise UserAuthError("no user_auth authentication plugin recognised the job", "unknown_user")


def token_endpoint_of(launch: Mapping[str, Any]) -> str | None:
    """The token endpoint a submit carries: ``{"token_endpoint": URL}`` (how Galaxy's client
    sends it over HTTP and how the MQ setup is translated), or a bare URL."""
    value = launch.get("token_endpoint")
    if isinstance(value, Mapping):
        value = value.get("token_endpoint")
    return value if isinstance(value, str) and value else None
