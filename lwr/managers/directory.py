"""A job's directory on disk: its layout, and the confinement of every client-supplied name.

Every file name a client sends (uploads, downloads, path queries) goes through
:meth:`JobDirectory.resolve`, which is the single place that decides whether a name stays inside the
job's directory. Names may be nested (``dataset_0_files/sub/extra``) but never absolute, never climb
with ``..``, never hold a NUL byte, and never pass through a symlink that leads out of the job.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from lwr.errors import AuthorizationError, InvalidRequestError, NameTooLongError
from lwr.managers import safe_path

#: upload and path-query types -> the sub-directory they land in
INPUT_TYPES = {
    "input": "inputs",
    "unstructured": "unstructured",
    "config": "configs",
    "tool": "tool_files",
    "workdir": "working",
    "metadata": "metadata",
    "jobdir": "",
}

#: download types -> the sub-directory they are read from
OUTPUT_TYPES = {
    "output": "outputs",
    "output_workdir": "working",
    "output_metadata": "metadata",
    "output_jobdir": "",
}

#: every sub-directory a job gets at setup
SUBDIRECTORIES = (
    "inputs",
    "unstructured",
    "configs",
    "tool_files",
    "working",
    "metadata",
    "outputs",
    "home",
    "tmp",
)

#: what the clients understand in the setup answer, key -> sub-directory
SETUP_KEYS = {
    "working_directory": "working",
    "outputs_directory": "outputs",
    "metadata_directory": "metadata",
    "configs_directory": "configs",
    "tools_directory": "tool_files",
    "inputs_directory": "inputs",
    "unstructured_files_directory": "unstructured",
}

#: the longest path (in bytes, with its NUL) the system's calls take; 4096 on Linux
PATH_MAX = getattr(os, "pathconf", lambda _path, _name: 4096)("/", "PC_PATH_MAX")
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}\Z")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")

# control files the job script and the managers write in the job directory
SCRIPT_NAME = "job.sh"
LAUNCH_NAME = "job.json"  # what the Python launcher runs where there is no bash
BATCH_NAME = "job.bat"  # the command as the Python launcher hands it to cmd.exe on Windows
RETURN_CODE_NAME = "return_code"
STDOUT_NAME = "stdout"
STDERR_NAME = "stderr"
JOB_STDOUT_NAME = "job_stdout"
JOB_STDERR_NAME = "job_stderr"


#: names in the job directory itself that belong to LWR, never to a client upload
RESERVED_NAMES = frozenset(
    name + suffix
    for name in (
        SCRIPT_NAME,
        LAUNCH_NAME,
        BATCH_NAME,
        RETURN_CODE_NAME,
        STDOUT_NAME,
        STDERR_NAME,
        JOB_STDOUT_NAME,
        JOB_STDERR_NAME,
    )
    for suffix in ("", ".tmp")
)


def check_job_id(job_id: str) -> str:
    """Refuse job ids that could name anything but one directory (``..``, ``a/b``, empty…)."""
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id) or ".." in job_id:
        raise InvalidRequestError(
            f"invalid job id {job_id!r}: use letters, digits, '_', '-' and '.' (not '..')"
        )
    return job_id


def split_name(name: str) -> list[str]:
    """Split a client-supplied relative name into safe components, or raise.

    Both ``/`` and ``\\`` separate components: a client on another OS sends names with its own
    separator, and neither character is acceptable inside one component.
    """
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("a file name is required")
    if "\x00" in name:
        raise InvalidRequestError("file names must not contain NUL bytes")
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        raise InvalidRequestError(f"not a valid file name: {name!r}") from None
    if name.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(name):
        raise AuthorizationError(f"absolute file names are not allowed: {name!r}")
    parts = [part for part in re.split(r"[\\/]", name) if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise AuthorizationError(f"file names must not contain '..': {name!r}")
    if not parts:
        raise InvalidRequestError(f"not a file name: {name!r}")
    return parts


class JobDirectory:
    """The directory tree of one job and the only gate to paths inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self) -> None:
        """Make the job directory and every standard sub-directory (idempotent).

        The job directory first, then one ``mkdir`` per sub-directory: a ``parents=True``
        mkdir of the first sub-directory would fail once before creating the job directory,
        and every setup pays for these calls in its answer time.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        root = os.fspath(self.root)
        for sub in SUBDIRECTORIES:
            try:
                os.mkdir(os.path.join(root, sub))
            except FileExistsError:
                if not os.path.isdir(os.path.join(root, sub)):
                    raise

    def wipe(self) -> None:
        """Empty the directory for a fresh attempt, keeping the directory itself."""
        if self.root.exists():
            for child in self.root.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        self.create()

    def delete(self) -> None:
        """Remove the whole job directory (clean)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def retire(self) -> JobDirectory:
        """Move the directory out of the job's way at once; return it for a slower delete.

        After this the job id is free (a new setup starts from an empty directory) even though
        the files may take a while to delete.
        """
        if not self.root.exists():
            return self
        doomed = self.root.with_name(f".deleting-{self.root.name}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.root, doomed)
        except OSError:
            return self
        return JobDirectory(doomed)

    def exists(self) -> bool:
        return self.root.is_dir()

    def sub(self, name: str) -> Path:
        return self.root / name if name else self.root

    def setup_answer(self) -> dict[str, str]:
        """The directory part of the answer to a setup request."""
        answer = {key: str(self.sub(sub)) for key, sub in SETUP_KEYS.items()}
        answer["job_directory"] = str(self.root)
        return answer

    def resolve(self, file_type: str, name: str, *, for_output: bool = False) -> Path:
        """The path of ``name`` of ``file_type`` inside this job, or an error if it would escape.

        A first, path-based check (symlinks on disk followed with ``realpath``). It is only as
        good as the moment it runs: every open of the name goes through :meth:`locate` as well.
        """
        parts = self.parts(file_type, name, for_output=for_output)
        path = self.root.joinpath(*parts)
        if len(os.fsencode(os.path.abspath(path))) >= PATH_MAX:
            # descriptor-relative opens would store it, but no job could open the path it is given
            raise NameTooLongError(f"a path longer than the system's limit ({PATH_MAX} bytes)")
        root_real = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if not _within(real, root_real):
            raise AuthorizationError(f"{name!r} leads outside the job directory")
        return path

    def parts(self, file_type: str, name: str, *, for_output: bool = False) -> list[str]:
        """``name`` of ``file_type`` as components below the job directory (checked, not opened)."""
        table = OUTPUT_TYPES if for_output else INPUT_TYPES
        if file_type not in table:
            kinds = ", ".join(sorted(table))
            raise InvalidRequestError(f"unknown file type {file_type!r} (expected one of: {kinds})")
        parts = split_name(name)
        if not table[file_type] and not for_output and parts[0] in RESERVED_NAMES:
            raise AuthorizationError(f"{name!r} is reserved for LWR's own use in the job directory")
        return [table[file_type], *parts] if table[file_type] else parts

    def locate(
        self, file_type: str, name: str, *, for_output: bool = False, create: bool = False
    ) -> AbstractContextManager[safe_path.Located]:
        """The open directory and final name of ``name``, resolved without leaving the job.

        This is the descriptor-based twin of :meth:`resolve` that every read, write and rename of
        a client-supplied name uses (:mod:`lwr.managers.safe_path`).
        """
        parts = self.parts(file_type, name, for_output=for_output)
        return safe_path.locate(self.root, parts, create=create)

    def control(self, name: str) -> Path:
        """A control file of the job script (return code, streams) in the job directory."""
        return self.root / name

    def read_text(self, name: str, limit: int | None = None) -> str | None:
        """A control file's text (bounded), or None when it does not exist.

        The job may have replaced the file with a link: that is read as empty plus a note, never
        followed (:func:`lwr.managers.safe_path.read_control`).
        """
        data, note = safe_path.read_control(self.root, name, limit)
        if data is None:
            return None
        text = data.decode("utf-8", errors="replace")
        return f"{text}LWR: {note}\n" if note else text

    def return_code(self) -> int | None:
        """The command's exit code as the job script recorded it, or None if it never did."""
        text = self.read_text(RETURN_CODE_NAME)
        if text is None or not text.strip():
            return None
        try:
            return int(text.strip())
        except ValueError:
            return None

    def top_level_files(self) -> list[str]:
        """Files directly in the job directory (not LWR's own), for ``output_jobdir`` collection."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in os.scandir(self.root)
            if entry.is_file() and entry.name not in RESERVED_NAMES
        )

    def contents(self, sub: str) -> list[str]:
        """Relative paths (``os.sep``) of every file below a sub-directory, for staging-down."""
        return sorted(_walk(self.sub(sub)))


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk(base: Path) -> Iterator[str]:
    if not base.is_dir():
        return
    for directory, _dirs, files in os.walk(base):
        rel = os.path.relpath(directory, base)
        for name in files:
            yield name if rel == "." else os.path.join(rel, name)


def read_bounded(path: Path, limit: int | None) -> str:
    """Read a text file; beyond ``limit`` bytes keep its head and tail (errors are near the end)."""
    with open(path, "rb") as handle:
        data = safe_path.bounded(handle, limit)
    return data.decode("utf-8", errors="replace")
