"""Which system users a client may ask LWR to run a job as (``queued_external_drmaa``).

The user name arrives from the network (the client's ``user`` submit parameter) and ends up in a
``sudo -u`` command line, so it is checked before anything runs: a conservative name pattern, an
existing account, no root or system account unless the admin allows it, and an optional
allow-list.
"""

from __future__ import annotations

import logging
import pwd
import re
from dataclasses import dataclass, field

from lwr.errors import AuthorizationError, ConfigurationError, InvalidRequestError

log = logging.getLogger(__name__)

#: what Debian's ``adduser`` accepts by default, without the Samba-style trailing ``$``
USERNAME_PATTERN = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


@dataclass(frozen=True)
class UserPolicy:
    """The rules a requested user must pass; built once from the manager's options."""

    allowed: frozenset[str] = field(default_factory=frozenset)
    allow_root: bool = False
    min_uid: int = 1000

    @classmethod
    def from_options(cls, allowed: str, allow_root: str, min_uid: str) -> UserPolicy:
        """Parse ``allowed_users`` (comma separated), ``allow_root`` and ``min_uid``."""
        names = frozenset(name.strip() for name in allowed.split(",") if name.strip())
        bad = sorted(name for name in names if not USERNAME_PATTERN.fullmatch(name))
        if bad:
            raise ConfigurationError(f"allowed_users: not a valid user name: {', '.join(bad)}")
        try:
            uid = int(min_uid)
        except ValueError as exc:
            raise ConfigurationError(f"min_uid must be an integer, not {min_uid!r}") from exc
        return cls(allowed=names, allow_root=parse_bool("allow_root", allow_root), min_uid=uid)

    def check(self, name: str | None) -> pwd.struct_passwd:
        """Return the account for ``name`` or refuse it (400 for nonsense, 403 for not allowed)."""
        if not name:
            raise InvalidRequestError("this manager runs jobs as a named user: 'user' is required")
        if not USERNAME_PATTERN.fullmatch(name):
            raise InvalidRequestError(f"not an acceptable user name: {name!r}")
        try:
            account = pwd.getpwnam(name)
        except KeyError as exc:
            raise InvalidRequestError(f"no such user on this host: {name!r}") from exc
        if account.pw_uid == 0:
            if not self.allow_root:
                raise AuthorizationError(f"running jobs as {name!r} (uid 0) is not allowed")
        elif account.pw_uid < self.min_uid:
            raise AuthorizationError(
                f"running jobs as {name!r} is not allowed: uid {account.pw_uid} < {self.min_uid}"
            )
        if self.allowed and name not in self.allowed:
            raise AuthorizationError(f"user {name!r} is not in this manager's allowed_users")
        return account


def parse_bool(option: str, value: str) -> bool:
    """Read an ini boolean, refusing anything ambiguous by the option's name."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{option} must be true or false, not {value!r}")
