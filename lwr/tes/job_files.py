"""A TES task's own files in its job directory, read and written without leaving it.

Outputs are found (:func:`matches`) and opened (:func:`opened`) through the job's link-safe
opens; control files and ``content`` inputs are written through a temporary file renamed into
place (:func:`write_safely`); :func:`size_below` measures what stage-in fetched. Split from
:mod:`lwr.tes.staging`, which moves the bytes.
"""

from __future__ import annotations

import glob
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lwr import jsondepth
from lwr.errors import InvalidRequestError, NotFoundError, StagingError
from lwr.managers import safe_path
from lwr.managers.directory import JobDirectory
from lwr.tes import paths
from lwr.tes.models import DIRECTORY, Output

#: the control file (job directory) where stage-out records what it sent, for the task's logs
OUTPUTS_LOG = "tes_outputs.json"


@contextmanager
def opened(directory: JobDirectory, container_path: str) -> Iterator[tuple[Path, int]]:
    """An output opened through the job's link-safe opens, as a path to read it by, and its size.

    The task's processes may outlive it and swap a name for a link after any check by path; so
    the file is opened by descriptor (links kept inside the job, never a device or FIFO) and read
    through ``/proc/self/fd`` where there is one, which reaches the opened file, not the name.
    """
    relative = paths.relative(container_path)
    try:
        source = directory.resolve("output_workdir", relative, for_output=True)
        with directory.locate("output_workdir", relative, for_output=True) as found:
            fd = safe_path.open_regular(found)
    except NotFoundError:
        raise StagingError(f"{container_path} was not produced") from None
    try:
        by_descriptor = Path(f"/proc/self/fd/{fd}")
        yield (by_descriptor if by_descriptor.exists() else source), os.fstat(fd).st_size
    finally:
        os.close(fd)


def matches(output: Output, directory: JobDirectory) -> list[tuple[str, str]]:
    """(container path, destination URL) of every file an output names (globs, directories)."""
    root = directory.sub(paths.ROOT_SUBDIR)
    if output.is_glob:
        prefix = (output.path_prefix or "/").rstrip("/")
        found = sorted(glob.glob(paths.relative(output.path), root_dir=root))
        pairs = []
        for rel in found:
            for container_path in files_below(root, "/" + rel):
                pruned = container_path[len(prefix) :].lstrip("/")
                pairs.append((container_path, f"{output.url.rstrip('/')}/{pruned}"))
        return pairs
    if output.type == DIRECTORY:
        return [
            (path, f"{output.url.rstrip('/')}/{path[len(output.path.rstrip('/')) :].lstrip('/')}")
            for path in files_below(root, output.path.rstrip("/"))
        ]
    return [(output.path, output.url)]


def files_below(root: Path, container_path: str) -> list[str]:
    """The container paths of the regular files at or below ``container_path`` (no links)."""
    host = paths.host_path(root, container_path)
    if host.is_symlink():
        return []
    if host.is_file():
        return [container_path]
    found = []
    for folder, _dirs, files in os.walk(host):
        inner = os.path.relpath(folder, host)
        for name in sorted(files):
            rel = name if inner == "." else f"{inner}/{name}"
            if not os.path.islink(os.path.join(folder, name)):
                found.append(f"{container_path.rstrip('/')}/{rel}")
    return found


def size_below(host: Path) -> int:
    """Bytes of the regular file ``host``, or of the regular files below it (links not
    followed: a link the task planted counts as nothing)."""
    try:
        found = os.lstat(host)
    except OSError:
        return 0
    if not stat.S_ISDIR(found.st_mode):
        return found.st_size if stat.S_ISREG(found.st_mode) else 0
    total = 0
    for folder, _dirs, files in os.walk(host):
        for name in files:
            try:
                inner = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            total += inner.st_size if stat.S_ISREG(inner.st_mode) else 0
    return total


def write_content(directory: JobDirectory, relative: str, data: bytes) -> None:
    """Write a content literal into the task root (see :func:`_write_safely`)."""
    write_safely(directory, paths.ROOT_TYPE, relative, data)


def write_safely(directory: JobDirectory, file_type: str, name: str, data: bytes) -> None:
    """Write a file in the job through its link-safe opens: a temporary file made with
    ``O_EXCL|O_NOFOLLOW`` and renamed over the name, so a link the job planted is replaced,
    never followed out of the job."""
    with directory.locate(file_type, name, create=True) as found:
        fd, tmp_name = safe_path.open_temporary(found.dir_fd, ".tes-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            safe_path.put_in_place(found, tmp_name)
        except BaseException:
            safe_path.discard(found, tmp_name)
            raise


def write_log(directory: JobDirectory, sent: list[dict[str, str]]) -> None:
    write_safely(directory, "jobdir", OUTPUTS_LOG, json.dumps(sent).encode("utf-8"))


def read_outputs_log(directory: JobDirectory) -> list[dict[str, str]]:
    """What stage-out recorded (read without following links; malformed reads as nothing)."""
    text = directory.read_text(OUTPUTS_LOG, 4 * 1024 * 1024)
    try:  # in the job directory: the task may have rewritten it, even nested thousands deep
        found = jsondepth.loads(text, OUTPUTS_LOG) if text else []
    except InvalidRequestError:
        return []
    if not isinstance(found, list):
        return []
    keys = ("url", "path", "size_bytes")
    return [
        {k: str(e[k]) for k in keys}
        for e in found
        if isinstance(e, dict) and all(k in e for k in keys)
    ]
