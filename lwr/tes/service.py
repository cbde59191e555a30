"""The TES operations on one manager: create, list, get and cancel tasks.

Creating a task is translating it at the edge: the checked task becomes one command line
(:mod:`lwr.tes.command`), its resources the manager's native submit parameters
(:mod:`lwr.tes.resources`), and the whole is submitted through the manager's public ``submit``
with the task document in the job's launch record, where staging (:mod:`lwr.tes.staging`) and the
views (:mod:`lwr.tes.views`) find it. After that the job is like any other: queued, launched,
polled, recovered after a restart by the same manager and store.

A service user's task is stored in their job namespace (``alice~<id>``, its directory under
``.users/alice/``: lwr.managers.namespace), exactly as their Galaxy-protocol jobs are, so their
plan's running limit, the job listing, retention and notifications treat it as one of their jobs;
the client only ever sees the id without the namespace. What the plan and the server's admission
settings allow is decided in :mod:`lwr.tes.policy` before anything is created.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lwr.errors import InvalidRequestError, LwrError, NotFoundError
from lwr.managers import namespace
from lwr.managers.stateful import StatefulManager
from lwr.persistence.store import JobRecord, JobStore, PageQuery
from lwr.tes import command, paths, policy, resources, runtime
from lwr.tes.models import DIRECTORY, Task, parse_task
from lwr.tes.owner import may_see, user_of
from lwr.tes.staging import JOB_KEY, LAUNCH_KEY, check_url
from lwr.tes.states import TES_STATES
from lwr.tes.views import state_of, task_view, tes_info

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 256
MAX_PAGE_SIZE = 2048


@dataclass(frozen=True)
class Filters:
    """The ``GET /tasks`` filters (tags zipped in order; a key without a value matches any)."""

    name_prefix: str | None = None
    state: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def matches(self, record: JobRecord, document: Mapping[str, Any]) -> bool:
        name = document.get("name")
        if self.name_prefix and not (isinstance(name, str) and name.startswith(self.name_prefix)):
            return False
        if self.state and state_of(record) != self.state:
            return False
        tags = document.get("tags") or {}
        for key, value in self.tags:
            if key not in tags or (value and tags[key] != value):
                return False
        return True


def filters(
    name_prefix: str | None, state: str | None, keys: list[str], values: list[str]
) -> Filters:
    """Checked filters; ``tag_value`` entries pair with ``tag_key`` entries in order."""
    if state and state not in TES_STATES:
        raise InvalidRequestError(f"state must be one of {', '.join(TES_STATES)}, not {state!r}")
    if len(values) > len(keys):
        raise InvalidRequestError("more tag_value than tag_key parameters")
    tags = tuple((key, values[i] if i < len(values) else "") for i, key in enumerate(keys))
    return Filters(name_prefix or None, state or None, tags)


def create(
    manager: StatefulManager, body: Any, owner: str, quota: policy.Quota | None = None
) -> dict[str, str]:
    """Check and submit a task; answers ``{"id": ...}``.

    ``quota`` is the service user's plan (None for the admin token): their task lives in their
    namespace and is held to their plan (lwr.tes.policy).
    """
    task = parse_task(body)
    _check_storage(task)
    policy.check_storage(task, quota)
    policy.check_content(task, quota)
    kind = resources.family(manager.backend.type_name, manager.backend.options.get("job_plugin"))
    default_native = (
        manager.backend.options.get("native_specification", "") if kind == "sge" else ""
    )
    mapped = resources.map_resources(kind, task.resources, default_native)
    container = runtime.runtime_of(manager)
    runtime.require_runnable(container)
    document = dict(task.document)
    if task.resources.backend_parameters:
        document["resources"] = {
            **document["resources"],
            "backend_parameters": mapped.kept_parameters,
        }
    task_id = uuid.uuid4().hex
    job_id = namespace.scoped(user_of(owner), task_id)
    directory = manager.directory(job_id)
    root = directory.sub(paths.ROOT_SUBDIR)
    logs = directory.sub("metadata") / command.LOG_SUBDIR
    launch = {
        "command_line": command.command_line(task, root, logs, container),
        "setup_params": {},
        "params": mapped.params,
        LAUNCH_KEY: {
            "task": document,
            "owner": owner,
            # where stage-in records the size of each input it fetched (the job's files table)
            JOB_KEY: [manager.name, job_id],
            "runtime": container,
            "warnings": list(mapped.warnings),
        },
    }
    policy.admit(manager, job_id, launch)
    manager.submit(job_id, launch)
    _record_inputs(manager, job_id, task)
    log.info("TES task %s/%s created for %s", manager.name, job_id, owner)
    return {"id": task_id}


def find(manager: StatefulManager, task_id: str, owner: str) -> JobRecord:
    """The caller's task ``task_id``, or a 404 (unknown, not a task, or another's).

    The id is looked up in the caller's namespace only, so another user's task is not there
    (a user's task from before namespaces was moved into theirs at start: lwr.tes.legacy).
    """
    record = None
    try:
        record = manager.find(namespace.scoped(user_of(owner), task_id))
    except LwrError:
        record = None  # an id no job could have
    if record is None or not tes_info(record) or not may_see(tes_info(record).get("owner"), owner):
        raise NotFoundError(f"unknown task {task_id!r}")
    return record


def get(manager: StatefulManager, task_id: str, owner: str, view: str) -> dict[str, Any]:
    record = find(manager, task_id, owner)
    return task_view(record, manager.directory(record.job_id), view)


def cancel(manager: StatefulManager, task_id: str, owner: str) -> dict[str, Any]:
    """Cancel the task (a finished one is left as it is); answers ``{}``."""
    record = find(manager, task_id, owner)
    if not record.state.is_final:
        manager.cancel(record.job_id)
    return {}


def list_tasks(
    store: JobStore,
    manager: StatefulManager,
    owner: str,
    wanted: Filters,
    view: str,
    page_size: int,
    page_token: str | None,
) -> dict[str, Any]:
    """One page of the caller's tasks, newest first; the token is where the next page starts.

    Only the caller's namespace is read (the store's ``(owner, seq)`` index), then their tasks'
    owner mark is checked as before.
    """
    before = _token(page_token)
    found: list[JobRecord] = []
    while len(found) <= page_size:
        batch = store.page(
            PageQuery(
                owner=user_of(owner) or "",
                manager=manager.name,
                before=before,
                limit=max(64, page_size),
            )
        )
        if not batch:
            break
        for record in batch:
            info = tes_info(record)
            if info and may_see(info.get("owner"), owner) and wanted.matches(record, info["task"]):
                found.append(record)
        before = batch[-1].seq
    page, more = found[:page_size], len(found) > page_size
    answer: dict[str, Any] = {
        "tasks": [task_view(r, manager.directory(r.job_id), view) for r in page]
    }
    if more:
        answer["next_page_token"] = str(page[-1].seq)
    return answer


#: what a page size or token may be: ASCII digits only (``int()`` also takes "1_0", " 5", "٣")
_DIGITS = re.compile(r"[0-9]+")


def page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    if not _DIGITS.fullmatch(raw):
        raise InvalidRequestError(f"page_size must be an integer, not {raw!r}")
    size = int(raw)
    if size < 1:
        raise InvalidRequestError("page_size must be at least 1")
    return min(size, MAX_PAGE_SIZE)


def _token(raw: str | None) -> int | None:
    if not raw:
        return None
    if not _DIGITS.fullmatch(raw):  # str.isdigit() passes "²", which int() refuses (a 500)
        raise InvalidRequestError(f"invalid page_token {raw!r}")
    return int(raw)


def _record_inputs(manager: StatefulManager, job_id: str, task: Task) -> None:
    """Name the task's inputs in the job's files table, so ``GET /jobs`` and the dashboard list
    them as a Galaxy job's uploads. A ``content`` input has its size now; a fetched one is named
    with 0 until stage-in records what it brought (:class:`lwr.tes.staging.TesStaging`), which
    may already have happened: nothing recorded is replaced here."""
    for item in task.inputs:
        size = len(item.content.encode("utf-8")) if item.content is not None else 0
        manager.store.record_file(manager.name, job_id, "input", item.path, size, replace=False)


def _check_storage(task: Task) -> None:
    """Refuse what staging could never do: unknown schemes, remote directories, bad paths."""
    try:
        for path in paths.declared_paths(task):
            paths.parts(path)
    except LwrError as exc:
        raise InvalidRequestError(f"task path refused: {exc.message}") from None
    for index, item in enumerate(task.inputs):
        if item.path.rstrip("/") == "":
            raise InvalidRequestError(f"inputs[{index}].path must not be /")
        if item.url is not None and item.content is None:
            check_url(item.url, f"inputs[{index}].url")
            if item.type == DIRECTORY and not item.url.startswith(("file:", "/", "s3:")):
                raise InvalidRequestError(
                    f"inputs[{index}]: DIRECTORY inputs are supported from file:// and s3:// only"
                )
    for index, output in enumerate(task.outputs):
        check_url(output.url, f"outputs[{index}].url")
        if output.path.rstrip("/") == "":
            raise InvalidRequestError(f"outputs[{index}].path must not be /")
