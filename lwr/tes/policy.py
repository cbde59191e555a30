"""Who may create which TES task here: the server's admission settings and the caller's plan.

A TES task is an arbitrary command line with no Galaxy tool id and no Galaxy token, so two of
Pulsar's admission settings cannot judge it the way they judge a Galaxy job:

* a tool whitelist (``tool_config_files``) exists to let only listed tools run; a task names no
  tool, so on such a server TES is refused outright, for every caller, with a 403 naming the
  setting (letting it through would turn the whitelist off for anyone who speaks TES);
* ``user_auth`` is asked as for any job; plugins that need nothing from Galaxy (``allow_all``)
  admit the task, one that needs Galaxy's ``token_endpoint`` (``oidc``) cannot, and the 403 says
  why.

For a service user (lwr.service) the task is measured against their plan like an upload: the
``content`` literals are known when the task arrives and are refused with the 413 an upload
gets; what ``http(s)`` inputs weigh is known only while they arrive, so stage-in counts them
(:class:`InputBudget`) and fails the task, with the limit and plan in its system logs, the moment
they pass it. ``file://`` and ``s3://`` reach what the server's own file system rights and
credentials reach: like server-side staging for Galaxy jobs, they are the admin token's, unless
the operator opened places to users (``tes_user_file_roots``, ``tes_user_s3_buckets``:
:mod:`lwr.tes.user_storage`), where a user's URL must then lie (403 naming the option).

A service user's ``http(s)`` URLs reach only public addresses (:mod:`lwr.egress`, opened by
``tes_user_allowed_networks``): an address literal that is internal (``127.0.0.1``, ``[::1]``,
``169.254.169.254``, ``2130706433``) is refused with a 403 when the task arrives; a name is judged
by every transfer, which resolves it once and connects to the address it judged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from lwr.egress import EgressPolicy
from lwr.errors import AuthorizationError, LwrError, StagingError, UserAuthError
from lwr.service.plans import Plan, Plans, budget
from lwr.tes.models import Task
from lwr.tes.user_storage import UserStorage

if TYPE_CHECKING:
    from lwr.managers.stateful import StatefulManager

#: the storage schemes a service user's task may name (``content`` inputs need none)
USER_SCHEMES = ("http", "https")


class TesRefusedError(AuthorizationError):
    """TES is refused by a server setting; the answer names it, so an operator knows why."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting

    def to_dict(self) -> dict[str, object]:
        return {"error": self.message, "setting": self.setting}


class InputQuotaError(StagingError):
    """A task's inputs passed the owner's plan while they were staged in (the task fails)."""


@dataclass(frozen=True)
class Quota:
    """A service user's plan as a TES task meets it (None stands for the admin token)."""

    user: str
    plan: Plan
    plans: Plans
    #: where the user's task may fetch from and send to (``tes_user_allowed_networks``)
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    #: where the operator opened file:// and s3:// to users (lwr.tes.user_storage)
    storage: UserStorage = field(default_factory=UserStorage)


def admit(manager: StatefulManager, job_id: str, launch: Mapping[str, Any]) -> None:
    """Refuse the task when the server's tool whitelist or ``user_auth`` cannot admit it."""
    if manager.admission.authorizer.enabled:
        raise TesRefusedError(
            "TES is refused on this server: tool_config_files sets a tool whitelist, and a TES "
            "task runs commands no tool id names, so the whitelist could not check it",
            "tool_config_files",
        )
    if manager.admission.user_auth is None:
        return
    try:
        manager.admission.identify(job_id, launch)
    except UserAuthError as exc:
        raise TesRefusedError(
            f"TES task refused by {exc.message} (a TES task carries no Galaxy token_endpoint: "
            "only user_auth plugins that need none, such as allow_all, can admit it)",
            "user_auth",
        ) from None


def check_storage(task: Task, quota: Quota | None) -> None:
    """A service user's task may name only ``content``, :data:`USER_SCHEMES`, and ``file``
    and ``s3`` where the operator opened them (403)."""
    if quota is None:
        return
    named = [
        (f"inputs[{i}].url", item.url)
        for i, item in enumerate(task.inputs)
        if item.content is None and item.url is not None
    ]
    named += [(f"outputs[{i}].url", output.url) for i, output in enumerate(task.outputs)]
    for where, url in named:
        scheme = "file" if url.startswith("/") else url.partition(":")[0].lower()
        if scheme in USER_SCHEMES:
            _check_address(where, url, quota.egress)
            continue
        if scheme in ("file", "s3") and _opened_to(quota, scheme):
            _check_place(where, url, scheme, quota)
            continue
        raise TesRefusedError(
            f"{where}: {scheme} storage reads and writes with the server's own rights and is for "
            "the admin token; a service user's task may use content and "
            f"{', '.join(s + '://' for s in USER_SCHEMES)} storage (the server's administrator "
            "can open directories and buckets to users: tes_user_file_roots, "
            "tes_user_s3_buckets)",
            "service users' storage",
        )


def _opened_to(quota: Quota, scheme: str) -> bool:
    storage = quota.storage
    return bool(storage.file_roots if scheme == "file" else storage.s3_places)


def _check_place(where: str, url: str, scheme: str, quota: Quota) -> None:
    """403 when a user's ``file``/``s3`` URL lies outside what the operator opened, by name
    (each transfer checks again, following no link out: lwr.tes.user_storage)."""
    if scheme == "s3":
        if quota.storage.s3_allows(quota.user, url):
            return
        raise TesRefusedError(
            f"{where}: {url} is outside the s3 places opened to service users "
            f"({_s3_places(quota)})",
            "tes_user_s3_buckets",
        )
    path = url if url.startswith("/") else unquote(urlsplit(url).path)
    if quota.storage.file_place(quota.user, path) is None:
        roots = ", ".join(r.replace("{user}", quota.user) for r in quota.storage.file_roots)
        raise TesRefusedError(
            f"{where}: {url} is outside the directories opened to service users' file:// "
            f"URLs ({roots}; no '..')",
            "tes_user_file_roots",
        )


def _s3_places(quota: Quota) -> str:
    places = quota.storage.s3_places
    return ", ".join(f"s3://{b}/{p.replace('{user}', quota.user)}".rstrip("/") for b, p in places)


def _check_address(where: str, url: str, egress: EgressPolicy) -> None:
    """403 when ``url``'s host is an internal address literal the policy refuses."""
    reason = egress.literal_refusal(url)
    if reason is not None:
        raise TesRefusedError(
            f"{where}: {reason}; a service user's task may only reach public addresses (the "
            "server's administrator can allow networks: tes_user_allowed_networks)",
            "tes_user_allowed_networks",
        )


def check_content(task: Task, quota: Quota | None) -> None:
    """Refuse (413, as an upload) ``content`` literals over the plan, before anything is made."""
    if quota is None:
        return
    total = 0
    for item in task.inputs:
        if item.content is None:
            continue
        size = len(item.content.encode("utf-8"))
        found = budget(quota.plan, total)
        if found is not None and size > found.allowed:
            raise found.refuse(quota.plans, size)
        total += size


class InputBudget:
    """What a task's inputs may still bring while stage-in fetches them, file by file."""

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        #: bytes of the task's inputs so far (content literals and fetched files)
        self.total = 0
        self._file = 0
        self._where = ""
        self._before = 0
        self._budget = budget(quota.plan, 0)

    def start(self, where: str) -> None:
        """A new input file (``where`` names it in the failure) begins."""
        self._file, self._where, self._before = 0, where, self.total
        self._budget = budget(self.quota.plan, self.total)

    def attempt(self) -> Callable[[int], None]:
        """The progress callback of one try at the current file (a retry starts it again)."""
        self._file, self.total = 0, self._before
        return self.take

    def take(self, count: int) -> None:
        """``count`` more bytes of the current file arrived; fail once they pass the plan."""
        self._file += count
        self.total += count
        if self._budget is not None and self._file > self._budget.allowed:
            refusal: LwrError = self._budget.refuse(self.quota.plans, self._file)
            raise InputQuotaError(
                f"{self._where}: the task's inputs exceed its owner's plan: {refusal.message} "
                "(the transfer was stopped and the partial file removed)"
            )
