"""The plugins that need no outside service: ``allow_all`` (both families) and ``userlist``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from lwr.auth.base import (
    Authentication,
    Authorization,
    AuthRequest,
    Identity,
    Option,
    text_list,
)

#: the user ``allow_all`` authenticates every job as (Pulsar's name for it)
ANONYMOUS = "anonymous"


class AllowAllAuthentication(Authentication):
    """Every job is submitted by ``anonymous``: for sites that only want authorization hooks."""

    def authenticate(self, request: AuthRequest) -> Identity:
        return Identity(ANONYMOUS, self.type_name)


class AllowAllAuthorization(Authorization):
    """Every job may run, authenticated or not (authentication alone still has to pass)."""

    needs_identity: ClassVar[bool] = False

    def authorize(self, identity: Identity | None) -> bool:
        return True


class UserListAuthorization(Authorization):
    """Only the users named in ``userlist_allowed_users`` may run jobs (exact, case-sensitive)."""

    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "userlist_allowed_users": Option(text_list, required=True),
    }

    def __init__(self, type_name: str, options: Mapping[str, Any]) -> None:
        super().__init__(type_name, options)
        self.allowed = frozenset(options["userlist_allowed_users"])

    def authorize(self, identity: Identity | None) -> bool:
        return identity is not None and identity.username in self.allowed
