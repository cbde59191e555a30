"""Server-side staging of TES inputs and outputs, through LWR's own movers.

:class:`TesStaging` is the app's one stager (the ``Stager`` of :mod:`lwr.managers.server_staging`):
a job that carries a TES task is staged here, any other job by the wrapped
:class:`~lwr.staging.remote.RemoteStager` as before. The manager's life cycle is the same for
both: inputs are fetched while the job is ``preprocessing`` (TES ``INITIALIZING``), outputs sent
while it is ``postprocessing``, a failure ends the job ``failed`` (``SYSTEM_ERROR``) with the
reason. Bytes move through the registered movers (HTTP GET, the allowed-paths copy) and
:func:`lwr.staging.transfer.push` (HTTP ``PUT``); every path written or read in the job goes
through the job directory's checks, so a task's names never leave its task directory.

Storage schemes: ``content`` literals, ``http(s)://`` (GET in, PUT out), ``file://`` and bare
absolute paths inside ``remote_copy_allowed_paths`` (directories too), and ``s3://`` (files and
prefixes as directories) when boto3 is installed (:mod:`lwr.tes.s3`).

A service user's task (lwr.tes.owner) may use ``content`` and ``http(s)``, and ``file://`` and
``s3://`` only where the operator opened them (:mod:`lwr.tes.user_storage`: confined to the
user's roots and buckets, checked again here at each transfer). Its ``http(s)`` transfers go
through :mod:`lwr.egress`: the host is resolved once, every address judged (no loopback,
private, link-local or other internal address unless ``tes_user_allowed_networks`` allows its
network) and the connection made to a judged address, so a name rebound to an internal address
fails the task with the reason in its system logs. The admin token's tasks are not held. With
``tes_http_proxy`` every task's ``http(s)`` transfers (the admin token's too) go through the
operator's proxy (:mod:`lwr.proxy`), a user's judged first all the same. ``tes_ca_file`` names
the CAs https targets and an https proxy are verified by, instead of the system's. Each
input fetched whole has its size recorded in the job's files table (``GET /jobs``, the plan).
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from lwr.egress import EgressPolicy
from lwr.errors import InvalidRequestError, LwrError, NotFoundError, StagingError
from lwr.managers.directory import JobDirectory
from lwr.proxy import Proxy
from lwr.staging.movers import ClientFile, CopyMover
from lwr.staging.remote import RemoteStager
from lwr.staging.transfer import fetch, push
from lwr.tes import job_files, paths, policy, s3, user_storage
from lwr.tes.job_files import size_below
from lwr.tes.models import DIRECTORY, Input, Output, Task, task_from_document
from lwr.tes.owner import user_of
from lwr.tes.user_storage import UserStorage

if TYPE_CHECKING:
    from lwr.persistence.store import JobStore
    from lwr.service.users import Users

log = logging.getLogger(__name__)

#: the launch key that marks a job as a TES task
LAUNCH_KEY = "tes"
#: the key, in a task's launch block, of ``[manager, stored job id]``: where to record input sizes
JOB_KEY = "job"
SCHEMES = ("file", "http", "https")


def schemes() -> tuple[str, ...]:
    """The storage schemes this server stages: ``s3`` too when boto3 is installed."""
    return (*SCHEMES, "s3") if s3.available() else SCHEMES


class TesStaging:
    """Stages TES tasks; hands every other job to ``remote`` (see the module docstring)."""

    def __init__(
        self,
        remote: RemoteStager,
        users: Users | None = None,
        egress: EgressPolicy | None = None,
        store: JobStore | None = None,
        user_storage: UserStorage | None = None,
        proxy: Proxy | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.remote = remote
        #: the operator's forward proxy for every http(s) transfer (``tes_http_proxy``)
        self.proxy = proxy
        #: what verifies https targets and proxy (``tes_ca_file``; None: the system's CAs)
        self.tls = tls
        #: where users' file:// and s3:// URLs may lead (tes_user_file_roots, tes_user_s3_buckets)
        self.user_storage = user_storage or UserStorage()
        #: the job store, whose files table gets the size of each input fetched
        self.store = store
        self.s3 = s3.S3Storage()
        #: service users' plans: their tasks' inputs are counted against them (lwr.tes.policy)
        self.users = users
        #: where a service user's task may fetch from and send to (``tes_user_allowed_networks``)
        self.egress = egress or EgressPolicy()

    # -- the Stager protocol ----------------------------------------------------------------

    def needs_stage_in(self, launch: Mapping[str, Any]) -> bool:
        task = _task(launch)
        return bool(task.inputs) if task else self.remote.needs_stage_in(launch)

    def stage_in(self, launch: Mapping[str, Any], directory: JobDirectory) -> None:
        task = _task(launch)
        if task is None:
            return self.remote.stage_in(launch, directory)
        rewrite = _script_rewriter(launch, task, directory)
        budget = self._budget(launch)
        egress = self._egress(launch)
        user = _user(launch)
        for index, item in enumerate(task.inputs):
            where = f"input {index} ({item.path})"
            try:
                self._fetch(rewrite(item), directory, budget, where, egress, user)
            except policy.InputQuotaError:
                raise
            except LwrError as exc:
                raise StagingError(f"input {index} ({item.path}): {exc.message}") from None
            self._record_size(launch, directory, item)
        log.info("TES: staged %d input(s) into %s", len(task.inputs), directory.root)
        return None

    def needs_stage_out(self, launch: Mapping[str, Any]) -> bool:
        task = _task(launch)
        return bool(task.outputs) if task else self.remote.needs_stage_out(launch)

    def stage_out(
        self, launch: Mapping[str, Any], directory: JobDirectory, status: Mapping[str, Any]
    ) -> None:
        task = _task(launch)
        if task is None:
            return self.remote.stage_out(launch, directory, status)
        sent: list[dict[str, str]] = []
        egress = self._egress(launch)
        user = _user(launch)
        if status.get("returncode") == 0:  # an executor error uploads nothing
            for index, output in enumerate(task.outputs):
                try:
                    sent.extend(self._send(output, directory, egress, user))
                except LwrError as exc:
                    job_files.write_log(directory, sent)
                    raise StagingError(f"output {index} ({output.path}): {exc.message}") from None
        job_files.write_log(directory, sent)
        log.info("TES: sent %d output file(s) from %s", len(sent), directory.root)
        return None

    # -- inputs -----------------------------------------------------------------------------

    def _record_size(self, launch: Mapping[str, Any], directory: JobDirectory, item: Input) -> None:
        """Record what a fetched input weighs in the job's files table (``GET /jobs``, the
        dashboard, and the plan's per-job total that later uploads into the job are checked
        against). Only inputs fetched whole get here: one stopped at the plan's limit raised."""
        job = launch[LAUNCH_KEY].get(JOB_KEY)
        if self.store is None or not (isinstance(job, list) and len(job) == 2):
            return  # a task made before sizes were recorded
        try:
            size = size_below(directory.resolve(paths.ROOT_TYPE, paths.relative(item.path)))
        except LwrError:
            return  # its name now leads out of the job: nothing there is the input's
        self.store.record_file(str(job[0]), str(job[1]), "input", item.path, size)

    def _egress(self, launch: Mapping[str, Any]) -> EgressPolicy | None:
        """The policy a service user's task's transfers are held to (None: the admin token's)."""
        return None if _user(launch) is None else self.egress

    def _budget(self, launch: Mapping[str, Any]) -> policy.InputBudget | None:
        """What a service user's task may stage in under their plan now (None: no limit)."""
        user = _user(launch)
        if user is None or self.users is None:
            return None
        try:
            plan = self.users.plan_of(self.users.get(user))
        except NotFoundError:
            return None
        if plan.max_input_size is None and plan.max_total_input is None:
            return None
        return policy.InputBudget(policy.Quota(user, plan, self.users.plans))

    def _fetch(
        self,
        item: Input,
        directory: JobDirectory,
        budget: policy.InputBudget | None = None,
        where: str = "",
        egress: EgressPolicy | None = None,
        user: str | None = None,
    ) -> None:
        relative = paths.relative(item.path)
        if budget is not None:
            budget.start(where)
        if item.content is not None:
            data = item.content.encode("utf-8")
            if budget is not None:
                budget.attempt()(len(data))
            job_files.write_content(directory, relative, data)
            return
        url = item.url or ""
        scheme, local = _scheme(url)
        if egress is not None and scheme in policy.USER_SCHEMES:
            progress = budget.attempt if budget is not None else None
            target = _target(directory, relative)
            fetch(
                url,
                target,
                self.remote.policy,
                progress=progress,
                egress=egress,
                proxy=self.proxy,
                tls=self.tls,
            )
            return
        if egress is not None:
            self._fetch_for_user(str(user), item, directory, relative, budget)
            return
        if item.type == DIRECTORY and scheme == "s3":
            for name, object_url in self.s3.keys_below(url):
                self.s3.fetch(object_url, _target(directory, f"{relative}/{name}"))
            return
        if item.type == DIRECTORY:
            self._fetch_directory(local, directory, relative)
            return
        target = _target(directory, relative)
        if scheme == "s3":
            self.s3.fetch(url, target)
        elif scheme == "file":
            self._copier().fetch(ClientFile(local, "input"), target)
        elif self.proxy is not None or self.tls is not None:  # the admin token's: not judged
            fetch(url, target, self.remote.policy, proxy=self.proxy, tls=self.tls)
        else:
            self.remote.mover("remote_transfer").fetch(
                ClientFile(url, "input", {"url": url}), target
            )

    def _fetch_for_user(
        self,
        user: str,
        item: Input,
        directory: JobDirectory,
        relative: str,
        budget: policy.InputBudget | None,
    ) -> None:
        """A user's ``file://`` or ``s3://`` input, only where the operator opened them
        (lwr.tes.user_storage), counted against the user's plan as it arrives."""
        url = item.url or ""
        scheme, local = _scheme(url)
        take = budget.attempt() if budget is not None else None
        if scheme == "file":
            place = self.user_storage.file_place(user, local)
            if place is None:
                raise StagingError(_closed("file", url))
            root, parts = place
            if item.type != DIRECTORY:
                user_storage.read_into(root, parts, _target(directory, relative), take)
                return
            for below in user_storage.files_below(root, parts):
                target = _target(directory, "/".join([relative, *below]))
                user_storage.read_into(root, [*parts, *below], target, take)
            return
        if scheme != "s3" or not self.user_storage.s3_allows(user, url):
            raise StagingError(_closed(scheme, url))
        if item.type != DIRECTORY:
            self.s3.fetch(url, _target(directory, relative), take)
            return
        for name, object_url in self.s3.keys_below(url):
            if not self.user_storage.s3_allows(user, object_url):
                raise StagingError(_closed("s3", object_url))
            self.s3.fetch(object_url, _target(directory, f"{relative}/{name}"), take)

    def _fetch_directory(self, local: str, directory: JobDirectory, relative: str) -> None:
        copier = self._copier()
        source = copier.check(local, "read")
        if not os.path.isdir(source):
            raise StagingError(f"{local} is not a directory")
        base = directory.resolve(paths.ROOT_TYPE, relative)
        base.mkdir(parents=True, exist_ok=True)
        for folder, _dirs, files in os.walk(source):
            inner = os.path.relpath(folder, source)
            for name in files:
                rel = name if inner == "." else f"{inner}/{name}"
                target = directory.resolve(paths.ROOT_TYPE, f"{relative}/{rel}")
                target.parent.mkdir(parents=True, exist_ok=True)
                copier.fetch(ClientFile(os.path.join(folder, name), "input"), target)

    # -- outputs ----------------------------------------------------------------------------

    def _send(
        self,
        output: Output,
        directory: JobDirectory,
        egress: EgressPolicy | None = None,
        user: str | None = None,
    ) -> list[dict[str, str]]:
        sent = []
        for container_path, url in job_files.matches(output, directory):
            with job_files.opened(directory, container_path) as (source, size):
                self._put(source, url, egress, user)
            sent.append({"url": url, "path": container_path, "size_bytes": str(size)})
        return sent

    def _put(
        self,
        source: Path,
        url: str,
        egress: EgressPolicy | None = None,
        user: str | None = None,
    ) -> None:
        scheme, local = _scheme(url)
        if egress is not None and scheme not in policy.USER_SCHEMES:
            self._put_for_user(str(user), source, url)
        elif scheme == "file":
            self._copier().send(source, ClientFile(local, "output"))
        elif scheme == "s3":
            self.s3.send(source, url)
        else:
            tls, proxy = self.tls, self.proxy
            push(url, source, self.remote.policy, "PUT", egress=egress, proxy=proxy, tls=tls)

    def _put_for_user(self, user: str, source: Path, url: str) -> None:
        """A user's ``file://`` or ``s3://`` output, only where the operator opened them."""
        scheme, local = _scheme(url)
        place = self.user_storage.file_place(user, local) if scheme == "file" else None
        if place is not None:
            user_storage.write_from(source, *place)
        elif scheme == "s3" and self.user_storage.s3_allows(user, url):
            self.s3.send(source, url)
        else:
            raise StagingError(_closed(scheme, url))

    def _copier(self) -> CopyMover:
        mover = self.remote.mover("remote_copy")
        assert isinstance(mover, CopyMover)
        return mover


def _user(launch: Mapping[str, Any]) -> str | None:
    """The service user whose task this is (None: the admin token's)."""
    return user_of(str(launch[LAUNCH_KEY].get("owner") or ""))


def _closed(scheme: str, url: str) -> str:
    """Why a user's URL is refused at transfer (the options may have changed since)."""
    option = "tes_user_file_roots" if scheme == "file" else "tes_user_s3_buckets"
    return f"{url} is not in the {scheme} storage opened to service users ({option})"


def _scheme(url: str) -> tuple[str, str]:
    """(scheme, local path for ``file``) of a storage URL; bare absolute paths are ``file``."""
    if url.startswith("/"):
        return "file", url
    parts = urlsplit(url)
    if parts.scheme not in schemes():
        raise StagingError(f"unsupported storage scheme {parts.scheme or url!r}")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StagingError(f"file URL {url!r} names another host")
        return "file", unquote(parts.path)
    return parts.scheme, url


def check_url(url: str, where: str) -> None:
    """Refuse, at task creation, a URL whose scheme no stager here can handle."""

    try:
        _scheme(url)
    except StagingError as exc:
        raise InvalidRequestError(f"{where}: {exc.message}") from None


def _script_rewriter(
    launch: Mapping[str, Any], task: Task, directory: JobDirectory
) -> Callable[[Input], Input]:
    """With runtime ``none``: content inputs an executor runs (a script named in its command)
    get the declared container paths rewritten, as the command itself does (lwr.tes.paths)."""
    if launch[LAUNCH_KEY].get("runtime", "none") != "none":
        return lambda item: item
    scripts = {arg for executor in task.executors for arg in executor.command}
    rewrite = paths.rewriter(directory.sub(paths.ROOT_SUBDIR), paths.declared_paths(task))

    def apply(item: Input) -> Input:
        if item.content is None or item.path not in scripts:
            return item
        return replace(item, content=rewrite(item.content))

    return apply


def _target(directory: JobDirectory, relative: str) -> Path:
    """A checked place for a fetched file in the task root, its directory made."""
    target = directory.resolve(paths.ROOT_TYPE, relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _task(launch: Mapping[str, Any]) -> Task | None:
    tes = launch.get(LAUNCH_KEY)
    if not isinstance(tes, Mapping):
        return None
    return task_from_document(tes.get("task") or {})
