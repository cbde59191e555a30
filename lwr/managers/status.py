"""The completion dictionary: everything a client's staging-down code reads about a finished job.

Built from the job's record and its directory on every request — never cached in memory — so a
restarted server answers exactly as the one that ran the job would have.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lwr.errors import LwrError
from lwr.managers import safe_path
from lwr.managers.base import JobState
from lwr.managers.directory import (
    JOB_STDERR_NAME,
    JOB_STDOUT_NAME,
    STDERR_NAME,
    STDOUT_NAME,
    JobDirectory,
)
from lwr.persistence.store import JobRecord


def system_properties() -> dict[str, str]:
    """Facts about this host that clients use to build remote paths."""
    return {"separator": os.sep}


def completion(record: JobRecord, directory: JobDirectory, limit: int) -> dict[str, Any]:
    """The full status dictionary of a job whose command has ended (or never will)."""
    stdout = _read_first(directory, "tool_stdout", STDOUT_NAME, limit)
    stderr = _read_first(directory, "tool_stderr", STDERR_NAME, limit)
    if record.state is not JobState.COMPLETE and record.reason:
        stderr = f"{stderr}\nLWR: job {record.state.value}: {record.reason}".lstrip("\n")
    return {
        "job_id": record.client_job_id,
        "complete": "true",
        "status": record.state.wire,
        "returncode": record.return_code,
        "stdout": stdout,
        "stderr": stderr,
        "job_stdout": directory.read_text(JOB_STDOUT_NAME, limit) or "",
        "job_stderr": directory.read_text(JOB_STDERR_NAME, limit) or "",
        "working_directory": str(directory.sub("working")),
        "metadata_directory": str(directory.sub("metadata")),
        "outputs_directory": str(directory.sub("outputs")),
        "job_directory": str(directory.root),
        "working_directory_contents": directory.contents("working"),
        "metadata_directory_contents": directory.contents("metadata"),
        "outputs_directory_contents": directory.contents("outputs"),
        "job_directory_contents": directory.top_level_files(),
        "system_properties": system_properties(),
        "realized_dynamic_file_sources": realized_sources(directory, record.launch or {}),
        "reason": record.reason,
        "native_state": record.native_state,
        "attempt": record.attempt,
    }


def _read_first(directory: JobDirectory, preferred: str, fallback: str, limit: int) -> str:
    """The tool's own stream file if the command line redirected into it, else the job's.

    Both are read without following links (the job owns them): a link reads as a note.
    """
    try:
        with directory.locate("metadata", preferred) as found:
            data, note = safe_path.read_at(found.dir_fd, found.name, limit)
    except LwrError:
        data, note = None, None
    if data is None:
        return directory.read_text(fallback, limit) or ""
    text = data.decode("utf-8", errors="replace")
    return f"{text}LWR: {note}\n" if note else text


def realized_sources(directory: JobDirectory, launch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The client's dynamic file sources (``galaxy.json``) with the contents the tool wrote."""
    realized = []
    for source in launch.get("dynamic_file_sources") or []:
        if not isinstance(source, Mapping) or not source.get("path"):
            continue
        try:
            with directory.locate("workdir", str(source["path"])) as found:
                data, note = safe_path.read_at(found.dir_fd, found.name, None)
        except (LwrError, OSError):
            continue
        if data is None or note:
            continue
        realized.append({**source, "contents": data.decode("utf-8", errors="replace")})
    return realized
