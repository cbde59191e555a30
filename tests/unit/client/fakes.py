"""A fake server-side job for the client's unit tests: records what staging asked of it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lwr.errors import NotFoundError

DIRECTORIES = {
    "input": "inputs",
    "unstructured": "unstructured",
    "tool": "tool_files",
    "config": "configs",
    "workdir": "working",
    "metadata": "metadata",
    "jobdir": "",
    "output": "outputs",
    "output_workdir": "working",
    "output_metadata": "metadata",
}


class FakeJobClient:
    """Implements the parts of :class:`lwr.client.api.JobClient` staging uses, on a local
    directory standing in for the server's job directory."""

    def __init__(self, root: Path, job_id: str = "7") -> None:
        self.root = root
        self.job_id = job_id
        self.calls: list[tuple[str, str, str]] = []
        self.statuses: Iterator[dict[str, Any]] = iter(())

    def setup_answer(self) -> dict[str, Any]:
        answer = {
            "working_directory": self.root / "working",
            "outputs_directory": self.root / "outputs",
            "metadata_directory": self.root / "metadata",
            "configs_directory": self.root / "configs",
            "tools_directory": self.root / "tool_files",
            "inputs_directory": self.root / "inputs",
            "unstructured_files_directory": self.root / "unstructured",
            "job_directory": self.root,
        }
        return {k: str(v) for k, v in answer.items()} | {"system_properties": {"separator": "/"}}

    def _path(self, file_type: str, name: str) -> Path:
        return self.root / DIRECTORIES[file_type] / name

    def upload(self, source: Path, file_type: str, name: str) -> str:
        self.calls.append(("upload", file_type, name))
        target = self._path(file_type, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target)

    def upload_contents(self, contents: bytes, file_type: str, name: str, scratch: Path) -> str:
        self.calls.append(("upload", file_type, name))
        target = self._path(file_type, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(contents)
        return str(target)

    def copy_in(self, source: Path, file_type: str, name: str, *, symlink: bool = False) -> str:
        self.calls.append(("symlink" if symlink else "copy", file_type, name))
        return str(self._path(file_type, name))

    def remote_path(self, file_type: str, name: str) -> str:
        return str(self._path(file_type, name))

    def download(self, file_type: str, name: str, target: Path) -> int:
        self.calls.append(("download", file_type, name))
        source = self._path(file_type, name)
        if not source.is_file():
            raise NotFoundError(f"output {name!r} does not exist")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target.stat().st_size

    def copy_out(self, file_type: str, name: str, target: Path) -> int:
        self.calls.append(("copy_out", file_type, name))
        return self.download(file_type, name, target)

    def status(self) -> dict[str, Any]:
        return next(self.statuses)
