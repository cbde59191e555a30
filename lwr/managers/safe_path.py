"""Opening client-supplied names inside a job without ever following a link out of it.

A job runs beside the server and may rename its own directories and plant symlinks at any moment,
so a name checked with ``realpath`` and opened later by path can lead somewhere else by the time it
is opened. Everything here works on directory descriptors instead: each component is opened with
``O_NOFOLLOW`` relative to the descriptor of its parent, and a symlink met on the way is read
(``readlinkat``) and interpreted inside the job — never handed to the kernel to follow. A link
whose target leaves the job is refused. Whatever a job swaps after a descriptor is open cannot
redirect it: the descriptor stays on the directory it was opened on.

Where Python has no ``dir_fd`` (Windows), the path-based fallback of
:mod:`lwr.managers.safe_path_paths` is used instead, behind the same functions: a
:class:`Located` then carries the directory's real path in place of a descriptor. The choice is
made once at import; ``LWR_SAFE_PATH=paths`` (or ``descriptors``) forces it, a test and
diagnostic switch (docs/windows.md), not a setting for production.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lwr.errors import AuthorizationError, InvalidRequestError, NotFoundError
from lwr.managers import safe_path_paths as _paths

#: how many links one name may pass through (the kernel's own limit is 40)
MAX_LINKS = 40
# POSIX flags; getattr keeps the module importable where they do not exist (see docs/windows.md)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | NOFOLLOW
_READ_FLAGS = os.O_RDONLY | NOFOLLOW | getattr(os, "O_NONBLOCK", 0)


def _choose_backend(forced: str) -> str:
    """``descriptors`` where ``openat`` and friends exist, else ``paths``; or what is forced."""
    if forced in ("descriptors", "paths"):
        return forced
    if forced:
        raise ValueError(f"LWR_SAFE_PATH must be 'descriptors' or 'paths', not {forced!r}")
    needed = (os.open, os.stat, os.mkdir, os.rename, os.unlink, os.readlink)
    return "descriptors" if all(f in os.supports_dir_fd for f in needed) else "paths"


#: the backend every new :func:`locate` and :func:`read_control` uses (tests may set it)
BACKEND = _choose_backend(os.environ.get("LWR_SAFE_PATH", "").strip().lower())


class NamesADirectoryError(InvalidRequestError):
    """The name (after its links) is a directory where a file was meant."""


@dataclass
class Located:
    """An entry inside the job: its directory (open descriptor, or real path) and its name there."""

    dir_fd: int | str
    name: str

    def close(self) -> None:
        if isinstance(self.dir_fd, int):
            os.close(self.dir_fd)


def open_root(root: Path) -> int:
    """The job directory's descriptor (the staging root above it is the operator's, trusted)."""
    try:
        return os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        raise NotFoundError("the job directory does not exist") from None
    except OSError as exc:
        raise AuthorizationError(
            f"the job directory cannot be opened safely: {exc.strerror}"
        ) from None


@contextmanager
def locate(root: Path, parts: list[str], *, create: bool = False) -> Iterator[Located]:
    """The directory descriptor and final name of ``parts`` below ``root``, links kept inside.

    With ``create``, missing directories on the way are made (``mkdirat``); without it a missing
    directory is a :class:`NotFoundError`. The final name itself may be missing.
    """
    if BACKEND == "paths":
        place = _paths.resolve(str(root), parts, create)
        if place is None:
            raise NamesADirectoryError("the name is a directory, not a file")
        yield Located(*place)
        return
    root_fd = open_root(root)
    try:
        found = _walk(root_fd, os.path.realpath(root), parts, create)
    finally:
        os.close(root_fd)
    try:
        yield found
    finally:
        found.close()


def _walk(root_fd: int, root_real: str, parts: list[str], create: bool) -> Located:
    stack = [os.dup(root_fd)]
    pending = list(reversed(parts))
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) == 1:
                    raise AuthorizationError("a link in the name leads outside the job directory")
                os.close(stack.pop())
                continue
            info = _lstat(part, stack[-1])
            if info is not None and stat.S_ISLNK(info.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise AuthorizationError("too many symbolic links in the name")
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    for fd in stack[1:]:
                        os.close(fd)
                    del stack[1:]
                    target = _inside(target, root_real)
                pending.extend(reversed(target.split("/")))
                continue
            if not pending:
                return Located(stack.pop(), part)
            stack.append(_open_dir(part, stack[-1], missing=info is None, create=create))
        raise NamesADirectoryError("the name is a directory, not a file")
    finally:
        for fd in stack:
            os.close(fd)


def _inside(target: str, root_real: str) -> str:
    """An absolute link target as a name relative to the job, or refused if it is not in it."""
    target = os.path.normpath(target)
    if target == root_real:
        return "."
    if not target.startswith(root_real.rstrip("/") + "/"):
        raise AuthorizationError("a symbolic link in the name leads outside the job directory")
    return target[len(root_real.rstrip("/")) + 1 :]


def _lstat(name: str, dir_fd: int | str) -> os.stat_result | None:
    if isinstance(dir_fd, str):
        return _paths.lstat(dir_fd, name)
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_dir(name: str, dir_fd: int, *, missing: bool, create: bool) -> int:
    if missing:
        if not create:
            raise NotFoundError(f"{name!r} does not exist")
        try:
            os.mkdir(name, 0o777, dir_fd=dir_fd)  # the umask applies, as for any mkdir
        except FileExistsError:
            pass
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR and _is_link(name, dir_fd):
            exc.errno = errno.ELOOP  # a link refused by O_NOFOLLOW (Linux says O_DIRECTORY's word)
        raise _refusal(exc, name) from None


def _is_link(name: str, dir_fd: int) -> bool:
    info = _lstat(name, dir_fd)
    return info is not None and stat.S_ISLNK(info.st_mode)


def _refusal(exc: OSError, name: str) -> Exception:
    """A descriptive error for an ``openat`` that ``O_NOFOLLOW`` (or a race) made fail."""
    if exc.errno == errno.ELOOP:
        return AuthorizationError(f"{name!r} became a symbolic link; it is not followed")
    if exc.errno == errno.ENOTDIR:
        return InvalidRequestError(f"{name!r} is not a directory")
    if exc.errno == errno.ENOENT:
        return NotFoundError(f"{name!r} does not exist")
    return InvalidRequestError(f"{name!r} cannot be opened: {exc.strerror}")


def open_regular(found: Located) -> int:
    """A read descriptor on the regular file ``found`` (never a link, FIFO or device)."""
    if isinstance(found.dir_fd, str):
        return _paths.open_regular(found.dir_fd, found.name)
    try:
        fd = os.open(found.name, _READ_FLAGS, dir_fd=found.dir_fd)
    except OSError as exc:
        raise _refusal(exc, found.name) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotFoundError(f"{found.name!r} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def open_temporary(dir_fd: int | str, prefix: str) -> tuple[int, str]:
    """A new, exclusive file in ``dir_fd`` for a write that is renamed into place when whole."""
    if isinstance(dir_fd, str):
        return _paths.open_temporary(dir_fd, prefix)
    for _ in range(100):
        name = f"{prefix}{secrets.token_hex(8)}"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW
            return os.open(name, flags, 0o600, dir_fd=dir_fd), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name")


def put_in_place(found: Located, tmp_name: str) -> None:
    """Rename the finished temporary file over the final name, both relative to one descriptor."""
    if isinstance(found.dir_fd, str):
        return _paths.put_in_place(found.dir_fd, tmp_name, found.name)
    try:
        os.rename(tmp_name, found.name, src_dir_fd=found.dir_fd, dst_dir_fd=found.dir_fd)
    except IsADirectoryError:
        raise InvalidRequestError(f"{found.name!r} names a directory") from None


def discard(found: Located, name: str) -> None:
    if isinstance(found.dir_fd, str):
        return _paths.discard(found.dir_fd, name)
    try:
        os.unlink(name, dir_fd=found.dir_fd)
    except OSError:
        pass


def is_directory(found: Located) -> bool:
    """Whether the final name is itself a directory (not following a link)."""
    info = _lstat(found.name, found.dir_fd)
    return info is not None and stat.S_ISDIR(info.st_mode)


def same_directory(a: int | str, b: int | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and _paths.same_directory(a, b)
    first, second = os.fstat(a), os.fstat(b)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def read_control(root: Path, name: str, limit: int | None) -> tuple[bytes | None, str | None]:
    """A control file directly in the job directory: (bytes or None if absent, refusal note).

    The job owns these files and may have replaced one with a link; a link (or anything but a
    regular file) is never followed or read: the answer is no content plus a note saying why.
    """
    if BACKEND == "paths":
        if not os.path.isdir(root):
            return None, None
        return read_at(os.path.realpath(root), name, limit)
    try:
        root_fd = open_root(root)
    except NotFoundError:
        return None, None
    try:
        return read_at(root_fd, name, limit)
    finally:
        os.close(root_fd)


def read_at(dir_fd: int | str, name: str, limit: int | None) -> tuple[bytes | None, str | None]:
    """Like :func:`read_control`, for a file directly in the open directory ``dir_fd``."""
    try:
        fd = open_regular(Located(dir_fd, name))
    except NotFoundError:
        info = _lstat(name, dir_fd)
        if info is None:
            return None, None
        return b"", f"{name} is not a regular file; it was not read"
    except (AuthorizationError, InvalidRequestError):
        return b"", f"{name} is a symbolic link; it was not followed"
    with os.fdopen(fd, "rb") as handle:
        return bounded(handle, limit), None


def bounded(handle: BinaryIO, limit: int | None) -> bytes:
    """A file's bytes; beyond ``limit`` its head and tail (errors are near the end)."""
    if limit is None:
        return handle.read()
    size = os.fstat(handle.fileno()).st_size
    if size <= limit:
        return handle.read()
    marker = b"\n..\n"
    head_size = max(0, (limit - len(marker)) // 2)
    tail_size = max(0, limit - len(marker) - head_size)
    head = handle.read(head_size)
    handle.seek(size - tail_size)
    return (head + marker + handle.read(tail_size))[:limit]
