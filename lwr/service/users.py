"""Users: who may use this server besides the admin token, on which plan.

This is the service's one entry point for the web layer, the admin command and the faces built
on it later (the dashboard's sign-in and profile, notifications, retention). A caller is
identified once per request by :meth:`Users.identify`; the admin token (``private_token``)
keeps its meaning and behaviour, a user's token makes the request that user's.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from lwr.errors import AuthorizationError, InvalidRequestError, NotFoundError, UserRevokedError
from lwr.managers import namespace
from lwr.persistence.store import JobStore
from lwr.service.plans import Plan, Plans
from lwr.service.sessions import SessionConfig, SessionTable
from lwr.service.store import User, UserStore, token_digest

log = logging.getLogger(__name__)

#: what a user's token starts with: recognisable in a leaked log or a secret scanner
TOKEN_PREFIX = "lwr_"

PlanListener = Callable[[User, Plan, Plan], None]


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a service user, or the admin token (``user`` None)."""

    user: User | None = None

    @property
    def is_admin(self) -> bool:
        return self.user is None

    @property
    def owner(self) -> str | None:
        """The namespace the caller's job ids live in (None: the admin's, Pulsar's layout)."""
        return None if self.user is None else self.user.name


ADMIN = Caller()


class Users:
    """Users, their tokens and plans, over the job store's database."""

    def __init__(
        self,
        store: JobStore,
        plans: Plans,
        admin_token: str | None = None,
        sessions: SessionConfig | None = None,
    ) -> None:
        self.rows = UserStore(store.db)
        #: signed-in dashboard sessions (lwr.ui), ended with the user's revoke
        self.sessions = SessionTable(store.db, sessions)
        self.plans = plans
        self.admin_token = admin_token
        #: called as ``listener(user, old_plan, new_plan)`` after a plan change (retention's seam)
        self.plan_listeners: list[PlanListener] = []

    # -- who is asking ------------------------------------------------------------------------

    def identify(self, supplied: str | None) -> Caller:
        """The caller a token names; AuthorizationError (403) when it names no one.

        Without ``private_token`` the server is open as it always was: a request with no token,
        or one that is no user's, is the admin.
        """
        expected = self.admin_token
        if (
            supplied is not None
            and expected
            and hmac.compare_digest(supplied.encode(), expected.encode())
        ):
            return ADMIN
        user = self.authenticate(supplied) if supplied else None
        if user is not None:
            return Caller(user)
        if not expected:
            return ADMIN
        raise AuthorizationError("missing or wrong private_token")

    def authenticate(self, token: str) -> User | None:
        """The active user holding ``token``, or None."""
        digest = token_digest(token)
        found = self.rows.by_digest(digest)
        if found is None or not hmac.compare_digest(found[1], digest):
            return None
        return found[0]

    # -- administration -----------------------------------------------------------------------

    def add(self, name: str, plan: str | None = None) -> tuple[User, str]:
        """Create a user; returns it with its token, which is shown this once and never stored."""
        namespace.check_user_name(name)
        chosen = self.plans.get(plan or self.plans.default).name
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        user = self.rows.insert(name, chosen, token_digest(token))
        log.info("service: user %s added on plan %s", name, chosen)
        return user, token

    def get(self, name: str) -> User:
        return self.rows.get(namespace.check_user_name(name))

    def all(self) -> list[User]:
        return self.rows.all()

    def set_plan(self, name: str, plan: str) -> User:
        """Move a user to another plan; listeners hear of it (retention restores on upgrade)."""
        before = self.get(name)
        new_plan = self.plans.get(plan)
        user = self.rows.update(before.name, plan=new_plan.name)
        log.info("service: user %s moved from plan %s to %s", name, before.plan, new_plan.name)
        for listener in list(self.plan_listeners):
            try:
                listener(user, self.plan_of(before), new_plan)
            except Exception:
                log.exception("service: plan listener failed for user %s", name)
        return user

    def revoke(self, name: str) -> User:
        """Refuse the user's token from now on and end their dashboard sessions (one
        transaction); their jobs and files stay, the name stays taken."""
        user = self.get(name)
        if not user.active:
            raise UserRevokedError(f"user {name!r} is revoked already")
        revoked = self.rows.update(
            user.name,
            also=lambda tx: SessionTable.end_all_of(tx, user.name),
            revoked=time.time(),
        )
        log.info("service: user %s revoked", name)
        return revoked

    # -- limits -------------------------------------------------------------------------------

    def plan_of(self, user: User) -> Plan:
        """The user's plan; one the configuration no longer has falls back to the default."""
        try:
            return self.plans.get(user.plan)
        except InvalidRequestError:
            log.warning(
                "service: user %s is on unknown plan %s; using %s",
                user.name,
                user.plan,
                self.plans.default,
            )
            return self.plans.get(self.plans.default)

    def running_limit(self, owner: str) -> int | None:
        """Jobs ``owner`` may have running at once (the monitor's hook)."""
        try:
            return self.plan_of(self.rows.get(owner)).max_running_jobs
        except NotFoundError:
            return None
