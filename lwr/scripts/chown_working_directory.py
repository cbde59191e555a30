"""Give a job directory, recursively, to a user: ``chown_working_directory USER PATH`` (as root).

Run through sudo by LWR's own user, so it trusts neither argument. When started by sudo
(``SUDO_UID`` set) it refuses: a target of uid 0 (unless the caller is root anyway), a path that
is not absolute, not a real directory or passes through a symlink, and a directory whose parent
is not owned by the caller or is writable by others: job directories live in LWR's staging
directory, so anything else is not a job directory. The walk works on directory descriptors and
never follows symlinks, so a job's user cannot redirect it by swapping a directory for a link.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys

from lwr.managers.users import USERNAME_PATTERN


def check_target(user: str, path: str, sudo_uid: int | None) -> pwd.struct_passwd:
    """Validate the arguments against the caller; raises ValueError naming what is wrong."""
    if not USERNAME_PATTERN.fullmatch(user):
        raise ValueError(f"not an acceptable user name: {user!r}")
    try:
        account = pwd.getpwnam(user)
    except KeyError as exc:
        raise ValueError(f"no such user: {user!r}") from exc
    if not os.path.isabs(path) or os.path.realpath(path) != os.path.normpath(path):
        raise ValueError(f"not an absolute path free of symlinks: {path!r}")
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or os.path.normpath(path) == "/":
        raise ValueError(f"not a job directory: {path!r}")
    if sudo_uid is None or sudo_uid == 0:
        return account
    if account.pw_uid == 0:
        raise ValueError("refusing to give a directory to root")
    parent = os.lstat(os.path.dirname(os.path.normpath(path)))
    if parent.st_uid != sudo_uid or parent.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ValueError(f"the parent of {path!r} is not a directory only the caller may change")
    return account


def chown_tree(path: str, uid: int, gid: int) -> int:
    """Chown ``path`` and everything below it without following symlinks; returns the count."""
    count = 0
    for _dirpath, dirnames, filenames, dir_fd in os.fwalk(path, follow_symlinks=False):
        if count == 0:
            os.chown(dir_fd, uid, gid)
            count += 1
        for name in dirnames + filenames:
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    """Check the arguments, then chown; exit 1 with the reason on stderr when refused."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -I -m lwr.scripts.chown_working_directory USER PATH\n")
        return 2
    user, path = args
    sudo_uid = os.environ.get("SUDO_UID")
    try:
        account = check_target(user, path, int(sudo_uid) if sudo_uid else None)
        chown_tree(os.path.normpath(path), account.pw_uid, account.pw_gid)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"chown_working_directory: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
