"""The wire calls of one job, exactly as LWR and Pulsar 0.16 servers expect them.

One method per route of the protocol (see ``docs/protocol.md``): parameters in the query string,
structured ones as JSON strings, files as raw bodies. It knows nothing about staging: deciding what
to send where is :mod:`lwr.client.stage_in`'s job; this module only says it on the wire.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lwr.client.transport import HttpTransport, TransportOptions
from lwr.errors import LwrError, NotFoundError, StagingError

log = logging.getLogger(__name__)

#: states after which a job's status no longer changes
FINAL_STATES = frozenset({"complete", "failed", "cancelled", "lost"})


class JobClient:
    """Calls for the job ``job_id`` on the server at ``url`` (may hold ``/managers/NAME/``)."""

    def __init__(
        self,
        url: str,
        job_id: str,
        *,
        private_token: str | None = None,
        manager: str | None = None,
        options: TransportOptions | None = None,
        transport: HttpTransport | None = None,
    ) -> None:
        if manager and "/managers/" not in url:
            url = url.rstrip("/") + f"/managers/{manager}/"
        self.transport = transport or HttpTransport(url, private_token, options)
        self.job_id = job_id

    # -- life cycle -----------------------------------------------------------------------------

    def setup(self, tool_id: str | None = None, tool_version: str | None = None) -> dict[str, Any]:
        """Create the job's directories; the server may assign another id, which we adopt."""
        params = {"job_id": self.job_id, "tool_id": tool_id, "tool_version": tool_version}
        answer = self.transport.call("POST", "jobs", params)
        if not isinstance(answer, dict) or "working_directory" not in answer:
            raise LwrError(f"setup of job {self.job_id!r}: unexpected answer {answer!r}")
        assigned = answer.get("job_id")
        if assigned and str(assigned) != self.job_id:
            log.info("server assigned job id %s to client job %s", assigned, self.job_id)
            self.job_id = str(assigned)
        return answer

    def submit(
        self,
        command_line: str,
        *,
        env: list[dict[str, str]] | None = None,
        dependencies_description: Mapping[str, Any] | None = None,
        remote_staging: Mapping[str, Any] | None = None,
        dynamic_file_sources: Sequence[Mapping[str, Any]] | None = None,
        submit_params: Mapping[str, Any] | None = None,
        submit_extras: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue the command; structured parameters travel as JSON strings, as the protocol has it.

        Sent only when given, as Galaxy's client does, so an old server never sees a key it
        does not know. Not retried once the request has reached the server: a job must not run
        twice.
        """
        params: dict[str, Any] = {"job_id": self.job_id, "command_line": command_line}
        optional: dict[str, Any] = {
            "env": env or None,
            "dependencies_description": dependencies_description,
            "remote_staging": remote_staging or None,
            "params": submit_params or None,
            "submit_extras": submit_extras or None,
        }
        for name, value in optional.items():
            if value is not None:
                params[name] = json.dumps(value)
        if dynamic_file_sources is not None:
            params["dynamic_file_sources"] = json.dumps(list(dynamic_file_sources))
        answer = self.transport.call("POST", f"jobs/{self.job_id}/submit", params, safe=False)
        return answer if isinstance(answer, dict) else {}

    def status(self) -> dict[str, Any]:
        """The status dictionary (``complete`` is the string ``"true"`` once finished)."""
        answer = self.transport.call("GET", f"jobs/{self.job_id}/status", {"job_id": self.job_id})
        if not isinstance(answer, dict) or "status" not in answer:
            raise LwrError(f"status of job {self.job_id!r}: unexpected answer {answer!r}")
        return answer

    def cancel(self) -> Any:
        return self.transport.call("PUT", f"jobs/{self.job_id}/cancel", {"job_id": self.job_id})

    def clean(self) -> Any:
        return self.transport.call("DELETE", f"jobs/{self.job_id}", {"job_id": self.job_id})

    # -- files ----------------------------------------------------------------------------------

    def upload(self, source: Path, file_type: str, name: str) -> str:
        """Send a file; return the path the server stored it at."""
        params = {"job_id": self.job_id, "name": name, "type": file_type}
        answer = self.transport.upload(f"jobs/{self.job_id}/files", params, source, label=name)
        remote = answer.get("path")
        if not isinstance(remote, str):
            raise StagingError(f"upload of {source} as {name!r}: no path in answer {answer!r}")
        return remote

    def upload_contents(self, contents: bytes, file_type: str, name: str, scratch: Path) -> str:
        """Send bytes held in memory (a rewritten config file) through a scratch file."""
        scratch.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_bytes(contents)
        try:
            return self.upload(scratch, file_type, name)
        finally:
            scratch.unlink(missing_ok=True)

    def remote_path(self, file_type: str, name: str) -> str:
        """Where the server keeps (or would keep) ``name`` of ``file_type``."""
        params = {"job_id": self.job_id, "name": name, "type": file_type}
        answer = self.transport.call("GET", f"jobs/{self.job_id}/files/path", params)
        if not isinstance(answer, dict) or not isinstance(answer.get("path"), str):
            raise StagingError(f"path of {name!r} ({file_type}): unexpected answer {answer!r}")
        return str(answer["path"])

    def download(self, file_type: str, name: str, target: Path) -> int:
        """Fetch ``name`` of ``file_type`` into ``target``; return its size."""
        params = {"job_id": self.job_id, "name": name, "type": file_type}
        return self.transport.download(f"jobs/{self.job_id}/files", params, target, label=name)

    def copy_in(self, source: Path, file_type: str, name: str, *, symlink: bool = False) -> str:
        """Shared disk: place ``source`` at the server's path for it (a copy or a symlink)."""
        remote = Path(self.remote_path(file_type, name))
        try:
            remote.parent.mkdir(parents=True, exist_ok=True)
            if remote.is_symlink() or remote.exists():
                remote.unlink()
            if symlink:
                os.symlink(os.path.abspath(source), remote)
            else:
                shutil.copyfile(source, remote)
        except OSError as exc:
            verb = "symlink" if symlink else "copy"
            raise StagingError(f"cannot {verb} {source} to {remote}: {exc}") from None
        return str(remote)

    def copy_out(self, file_type: str, name: str, target: Path) -> int:
        """Shared disk: copy an output from the server's path for it into ``target``."""
        remote = Path(self.remote_path(file_type, name))
        if not remote.is_file():
            raise NotFoundError(f"output {name!r} ({file_type}) is not at {remote}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(remote, target)
        except OSError as exc:
            raise StagingError(f"cannot copy {remote} to {target}: {exc}") from None
        return target.stat().st_size

    def close(self) -> None:
        self.transport.close()
