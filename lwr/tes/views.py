"""A job record read back as a TES task, in the ``MINIMAL``, ``BASIC`` or ``FULL`` view.

The task document the client sent is stored with the job; the server adds ``id``, ``state``,
``creation_time`` and ``logs``. The executor logs come from the files the task's command line
records in ``metadata/tes/`` (:mod:`lwr.tes.command`), the output logs from stage-out's record,
and ``system_logs`` from the job record (why it failed, where it ran) and the container note.
Everything a job can write is read without following links and bounded: a log shows its tail.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from typing import Any

from lwr.errors import InvalidRequestError, LwrError
from lwr.managers import safe_path
from lwr.managers.directory import JobDirectory
from lwr.persistence.store import JobRecord
from lwr.tes import command, paths
from lwr.tes.job_files import read_outputs_log
from lwr.tes.models import task_from_document
from lwr.tes.staging import LAUNCH_KEY
from lwr.tes.states import tes_state

VIEWS = ("MINIMAL", "BASIC", "FULL")
#: how much of an executor's stdout/stderr the FULL view shows (its end)
STREAM_TAIL = 64 * 1024


def check_view(view: str | None) -> str:
    """The requested view (default MINIMAL), or a 400 naming the allowed ones."""
    view = view or "MINIMAL"
    if view not in VIEWS:
        raise InvalidRequestError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
    return view


def tes_info(record: JobRecord) -> Mapping[str, Any]:
    """The TES part of a job's launch (task document, owner, runtime); {} for other jobs."""
    info = (record.launch or {}).get(LAUNCH_KEY)
    return info if isinstance(info, Mapping) else {}


def state_of(record: JobRecord) -> str:
    return tes_state(record.state, record.return_code)


def task_view(record: JobRecord, directory: JobDirectory, view: str) -> dict[str, Any]:
    """The task as ``GET /tasks/{id}`` answers it in ``view``."""
    answer: dict[str, Any] = {"id": record.client_job_id, "state": state_of(record)}
    if view == "MINIMAL":
        return answer
    info = tes_info(record)
    document = dict(info.get("task") or {})
    if view == "BASIC":
        document["inputs"] = [
            {k: v for k, v in item.items() if k != "content"}
            for item in document.get("inputs") or []
        ]
    answer.update(document)
    answer["id"], answer["state"] = record.client_job_id, state_of(record)
    answer["creation_time"] = rfc3339(record.created)
    answer["logs"] = [task_log(record, directory, info, full=view == "FULL")]
    return answer


def task_log(
    record: JobRecord, directory: JobDirectory, info: Mapping[str, Any], full: bool
) -> dict[str, Any]:
    """The one tesTaskLog of a task (LWR runs each task once)."""
    task = task_from_document(info.get("task") or {})
    root = directory.sub(paths.ROOT_SUBDIR)
    logs = directory.sub("metadata") / command.LOG_SUBDIR
    executor_logs = []
    for index in range(len(task.executors)):
        entry = _executor_log(directory, index, full, command.streams(task, index, root, logs))
        if entry is None:
            break
        executor_logs.append(entry)
    log: dict[str, Any] = {
        "logs": executor_logs,
        "outputs": read_outputs_log(directory) if record.state.is_final else [],
        "metadata": {"manager": record.manager, "job_state": record.state.value},
    }
    if record.external_id:
        log["metadata"]["external_id"] = record.external_id
    if executor_logs and "start_time" in executor_logs[0]:
        log["start_time"] = executor_logs[0]["start_time"]
    if record.state.is_final:
        log["end_time"] = rfc3339(record.updated)
    if full:
        log["system_logs"] = system_logs(record, info, task.executors)
    return log


def system_logs(record: JobRecord, info: Mapping[str, Any], executors: Any) -> list[str]:
    """What the system has to say: why the job failed, where it ran, images not used."""
    lines = []
    if record.reason:
        lines.append(f"{record.state.value}: {record.reason}")
    if record.native_state:
        lines.append(f"backend state: {record.native_state}")
    runtime = str(info.get("runtime") or "none")
    if runtime == "none":
        images = sorted({e.image for e in executors})
        lines.append(
            f"container_runtime = none: image(s) {', '.join(images)} not used; "
            "the commands ran on the host"
        )
    lines.extend(str(w) for w in info.get("warnings") or [])
    return lines


def _executor_log(
    directory: JobDirectory, index: int, full: bool, streams: command.Streams
) -> dict[str, Any] | None:
    start = _read(directory, f"{command.LOG_SUBDIR}/{index}.start", 100)
    if start is None:
        return None  # not started yet
    entry: dict[str, Any] = {"start_time": start.strip(), "exit_code": -1}
    end = _read(directory, f"{command.LOG_SUBDIR}/{index}.end", 100)
    if end:
        entry["end_time"] = end.strip()
    code = _read(directory, f"{command.LOG_SUBDIR}/{index}.exit_code", 100)
    if code and code.strip().lstrip("-").isdigit():
        entry["exit_code"] = int(code.strip())
    if full:
        entry["stdout"] = _tail(directory, streams.stdout)
        entry["stderr"] = _tail(directory, streams.stderr)
    return entry


def _read(directory: JobDirectory, name: str, limit: int) -> str | None:
    """A small record file below ``metadata``, or None (absent, a link, unreadable)."""
    try:
        with directory.locate("metadata", name) as found:
            data, note = safe_path.read_at(found.dir_fd, found.name, limit)
    except LwrError:
        return None
    if data is None or note:
        return None
    return data.decode("utf-8", errors="replace")


def _tail(directory: JobDirectory, path: os.PathLike[str] | str) -> str:
    """The last :data:`STREAM_TAIL` bytes of a stream file inside the job (links not followed)."""
    try:
        relative = os.path.relpath(path, directory.root)
        with directory.locate("jobdir", relative) as found:
            fd = safe_path.open_regular(found)
    except (LwrError, ValueError):
        return ""
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(max(0, size - STREAM_TAIL))
        return handle.read().decode("utf-8", errors="replace")


def rfc3339(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
