"""The path-based fallback of :mod:`lwr.managers.safe_path`, for a Python without ``dir_fd``.

Windows' Python cannot open a name relative to a directory descriptor, so there the job's names
are resolved as paths, the way LWR did before descriptors: the whole name is resolved with
``realpath`` and must stay inside the job directory, and the check is repeated (the directory and
the file must still resolve to themselves) immediately before each open, rename or unlink. A link
planted before the request is therefore refused as before; a swap made by the job between that
check and the open is not caught — only the descriptor backend closes that gap (docs/security.md).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

from lwr.errors import AuthorizationError, InvalidRequestError, NotFoundError

# No O_NOFOLLOW, on purpose: Windows has none, and the fallback forced on Linux (CI) must rely on
# its checks alone, as it does there. O_NONBLOCK only keeps a FIFO from blocking a thread on POSIX.
_COMMON = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | _COMMON | getattr(os, "O_NONBLOCK", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _COMMON


def _same(a: str, b: str) -> bool:
    return os.path.normcase(a) == os.path.normcase(b)


def _within(path: str, root: str) -> bool:
    path, root = os.path.normcase(path), os.path.normcase(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve(root: str, parts: list[str], create: bool) -> tuple[str, str] | None:
    """The real directory and final name of ``parts`` below ``root``; None for ``root`` itself."""
    if not os.path.isdir(root):
        raise NotFoundError("the job directory does not exist")
    root_real = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root_real, *parts))
    if not _within(full, root_real):
        raise AuthorizationError("a symbolic link in the name leads outside the job directory")
    if _same(full, root_real):
        return None
    directory, name = os.path.split(full)
    if create:
        try:
            os.makedirs(directory, exist_ok=True)
        except FileExistsError:
            raise InvalidRequestError(f"{name!r}: a directory on the way is a file") from None
        check_directory(directory)
    elif not os.path.isdir(directory):
        if os.path.lexists(directory):
            raise InvalidRequestError(f"{os.path.basename(directory)!r} is not a directory")
        raise NotFoundError(f"{os.path.basename(directory)!r} does not exist")
    return directory, name


def check_directory(directory: str) -> None:
    """Refuse a directory that no longer resolves to itself (a component became a link)."""
    if not _same(os.path.realpath(directory), directory) or not os.path.isdir(directory):
        raise AuthorizationError("a directory of the name was replaced; it is not followed")


def _check(directory: str, name: str) -> str:
    check_directory(directory)
    path = os.path.join(directory, name)
    if os.path.islink(path):
        raise AuthorizationError(f"{name!r} became a symbolic link; it is not followed")
    return path


def open_regular(directory: str, name: str) -> int:
    """A read descriptor on the regular file ``name`` in ``directory``, checked just before."""
    path = _check(directory, name)
    if os.path.isdir(path):
        raise NotFoundError(f"{name!r} is not a regular file")
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise NotFoundError(f"{name!r} does not exist") from None
    except OSError as exc:
        raise InvalidRequestError(f"{name!r} cannot be opened: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotFoundError(f"{name!r} is not a regular file")
    if hasattr(os, "O_NONBLOCK"):
        os.set_blocking(fd, True)
    return fd


def open_temporary(directory: str, prefix: str) -> tuple[int, str]:
    """A new, exclusive file in ``directory``, checked just before it is created."""
    check_directory(directory)
    for _ in range(100):
        name = f"{prefix}{secrets.token_hex(8)}"
        try:
            return os.open(os.path.join(directory, name), _WRITE_FLAGS, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name")


def put_in_place(directory: str, tmp_name: str, name: str) -> None:
    """Replace ``name`` with ``tmp_name`` (``os.replace``: Windows' rename refuses to)."""
    path = _check(directory, name)
    if os.path.isdir(path):
        raise InvalidRequestError(f"{name!r} names a directory")
    os.replace(os.path.join(directory, tmp_name), path)


def discard(directory: str, name: str) -> None:
    try:
        check_directory(directory)
        os.unlink(os.path.join(directory, name))
    except (OSError, AuthorizationError):
        pass


def lstat(directory: str, name: str) -> os.stat_result | None:
    try:
        return os.lstat(os.path.join(directory, name))
    except FileNotFoundError:
        return None


def same_directory(a: str, b: str) -> bool:
    try:
        return _same(a, b) and os.path.samefile(a, b) and _same(os.path.realpath(a), a)
    except OSError:
        return False
