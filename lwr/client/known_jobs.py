"""The jobs this client left on servers: what ``lwr list`` shows and ``lwr status JOB`` finds.

``lwr submit`` remembers a job the moment the server has set it up and forgets it once it has
cleaned it, so what stays remembered is exactly what a person may still have to look at or
clean: jobs kept with ``--keep``, jobs whose clean failed, jobs of an ``lwr submit`` that was
killed outright. One small JSON file per job (no shared file to lock, so concurrent submits
cannot lose each other's entries), in ``$LWR_CLIENT_STATE_DIR`` or the platform's per-user state
directory. The private token is never written: it is asked for again (option or
``LWR_PRIVATE_TOKEN``).

Why not ask the server? The protocol has no route listing jobs, Pulsar servers (which this
client also drives) have none, and a server's jobs are mostly Galaxy's, not this person's.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lwr.errors import InvalidRequestError


@dataclass(frozen=True)
class KnownJob:
    """One remembered job: where it is and what it was (never the token)."""

    job_id: str
    url: str
    manager: str | None = None
    command: str = ""
    submitted: float = 0.0

    @property
    def key(self) -> str:
        """A file-name-safe key unique per server, manager and job id."""
        raw = f"{self.url.rstrip('/')}\n{self.manager or ''}\n{self.job_id}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


def default_directory() -> Path:
    """Where jobs are remembered: ``$LWR_CLIENT_STATE_DIR``, else the per-user state directory.

    That is ``%LOCALAPPDATA%\\lwr\\jobs`` on Windows and ``$XDG_STATE_HOME/lwr/jobs`` (by default
    ``~/.local/state/lwr/jobs``) elsewhere.
    """
    explicit = os.environ.get("LWR_CLIENT_STATE_DIR")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "lwr" / "jobs"
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "lwr" / "jobs"


class KnownJobs:
    """The remembered jobs in one directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_directory()

    def remember(self, job: KnownJob) -> None:
        """Record a job (atomically; remembering it again replaces the entry)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{job.key}.json"
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(job)), encoding="utf-8")
        os.replace(tmp, path)

    def forget(self, job: KnownJob) -> None:
        (self.directory / f"{job.key}.json").unlink(missing_ok=True)

    def all(self) -> list[KnownJob]:
        """Every remembered job, newest first; unreadable entries are skipped."""
        jobs = []
        for path in self.directory.glob("*.json") if self.directory.is_dir() else ():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                jobs.append(KnownJob(**data))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(jobs, key=lambda job: job.submitted, reverse=True)

    def find(self, job_id: str, url: str | None = None, manager: str | None = None) -> KnownJob:
        """The job to act on: the remembered one, or (with ``url``) one this client never saw."""
        matches = [
            job
            for job in self.all()
            if job.job_id == job_id
            and (url is None or job.url.rstrip("/") == url.rstrip("/"))
            and (manager is None or job.manager == manager)
        ]
        if len(matches) == 1:
            return matches[0]
        if url is not None:
            return KnownJob(job_id, url, manager)
        if not matches:
            raise InvalidRequestError(
                f"job {job_id!r} is not one this client remembers: give the server with --url"
            )
        servers = ", ".join(sorted({job.url for job in matches}))
        raise InvalidRequestError(f"job {job_id!r} is known on several servers ({servers}): --url")


def new_entry(job_id: str, url: str, manager: str | None, command: str) -> KnownJob:
    return KnownJob(job_id, url, manager, command[:200], time.time())
