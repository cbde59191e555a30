"""The operator's opt-in for service users' ``file://`` and ``s3://`` TES URLs, and its confinement.

By default a service user's task may name ``content`` and ``http(s)`` only: ``file://`` and
``s3://`` act with the server's own file system rights and AWS credentials. Two options open
them, each to a fixed place:

* ``tes_user_file_roots``: directories a user's ``file://`` URLs must lie in; ``{user}`` in one
  stands for the user's name, so ``/srv/tes/{user}`` gives each user a directory of their own.
  A URL is first judged by name (``..`` refused, the path below a root, when the task arrives:
  403); each transfer then walks the path from the root by descriptors
  (:mod:`lwr.managers.safe_path`): a link is followed only while it stays in the root, so a
  link planted to leave it is refused, as is a name swapped for one after a check. Reads are
  counted against the user's plan like ``http`` downloads. A root may not hold, nor lie in, a
  directory the server keeps its own state in (staging, persistence, archive, cache), checked
  at start: a user could otherwise read other users' jobs or the job store.
* ``tes_user_s3_buckets``: ``bucket`` or ``bucket/prefix`` entries (``{user}`` allowed in the
  prefix) a user's ``s3://`` URLs must lie in, read and written with the server's credentials.
  Keys with ``.``/``..`` or empty segments are refused (some S3-compatible stores normalise
  them), a prefix matches whole segments (``data/alice`` does not admit ``data/alice2/x``), and
  the retention archive's bucket may not be listed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from lwr.errors import AuthorizationError, ConfigurationError, LwrError, NotFoundError, StagingError
from lwr.managers import safe_path

if TYPE_CHECKING:
    from lwr.config import AppConfig
    from lwr.managers.stateful import StatefulManager

USER = "{user}"


@dataclass(frozen=True)
class UserStorage:
    """Where service users' ``file://`` and ``s3://`` URLs may lead (nowhere by default)."""

    #: absolute directory templates (``{user}`` replaced by the user's name)
    file_roots: tuple[str, ...] = ()
    #: ``(bucket, prefix template)``; an empty prefix admits the whole bucket
    s3_places: tuple[tuple[str, str], ...] = ()

    def file_place(self, user: str, path: str) -> tuple[Path, list[str]] | None:
        """``(root, components below it)`` of ``path`` by name, None when no root holds it."""
        parts = [p for p in path.split("/") if p]
        if not path.startswith("/") or any(p in (".", "..") for p in parts):
            return None
        for template in self.file_roots:
            root = [p for p in template.replace(USER, user).split("/") if p]
            if parts[: len(root)] == root and len(parts) > len(root):
                return Path("/" + "/".join(root)), parts[len(root) :]
        return None

    def s3_allows(self, user: str, url: str) -> bool:
        """Whether ``s3://bucket/key`` (a key, or a prefix for a directory) is the user's."""
        parts = urlsplit(url)
        key = parts.path.lstrip("/")
        segments = key.split("/")
        if parts.scheme != "s3" or any(s in ("", ".", "..") for s in segments[:-1]):
            return False
        if segments[-1] in (".", "..") or "\\" in key:
            return False
        for bucket, prefix in self.s3_places:
            if parts.netloc != bucket:
                continue
            wanted = prefix.replace(USER, user).strip("/")
            if not wanted or key == wanted or key.startswith(wanted + "/"):
                return True
        return False

    def check_apart(
        self, protected: Iterable[Path], archive_bucket: str, configs: Iterable[Path] = ()
    ) -> None:
        """Refuse, at start, roots that hold or lie in the server's own directories, or hold
        the directory of its configuration (server.ini and its token), and the retention
        archive's bucket: no user name may make a root reach them."""
        for template in self.file_roots:
            fixed = os.path.realpath(_fixed_part(template))
            reached = [(p, True) for p in protected] + [(p, False) for p in configs]
            for directory, both_ways in reached:
                own = os.path.realpath(directory)
                if _within(own, fixed) or (both_ways and _within(fixed, own)):
                    raise ConfigurationError(
                        f"tes_user_file_roots: {template!r} would let users' tasks reach "
                        f"{own}, where the server keeps its own files; give them a directory "
                        "apart from its configuration, staging, persistence, archive and cache "
                        "directories"
                    )
        if archive_bucket and any(bucket == archive_bucket for bucket, _ in self.s3_places):
            raise ConfigurationError(
                f"tes_user_s3_buckets: {archive_bucket!r} is the retention archive's bucket "
                "(retention_s3_bucket); users' tasks may not reach it"
            )


def check_server_apart(config: AppConfig, managers: Mapping[str, StatefulManager]) -> None:
    """:meth:`UserStorage.check_apart` from every directory the server keeps files in."""
    own = [config.staging_directory, config.persistence_directory, config.file_cache_dir]
    own += [config.retention.directory_option, *(m.staging_directory for m in managers.values())]
    storage = config.tes_user_storage
    storage.check_apart(
        [p for p in own if p is not None], config.retention.s3_bucket, [config.here]
    )


def parse_user_storage(roots: str, buckets: str, base: Path) -> UserStorage:
    """The two options as they are written (comma, space or newline apart)."""
    found_roots = []
    for item in roots.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if not item.startswith("/"):
            item = str(base / item)
        if item.count(USER) > 1 or ("{" in item.replace(USER, "")):
            raise ConfigurationError(f"tes_user_file_roots: {item!r}: only {USER} may be used")
        found_roots.append(os.path.normpath(item))
    places = []
    for item in buckets.replace("\n", " ").replace(",", " ").split():
        bucket, _, prefix = unquote(item.removeprefix("s3://")).partition("/")
        if not bucket or USER in bucket or ".." in prefix.split("/"):
            raise ConfigurationError(f"tes_user_s3_buckets: {item!r} is not bucket[/prefix]")
        places.append((bucket, prefix.strip("/")))
    return UserStorage(tuple(found_roots), tuple(places))


def _fixed_part(template: str) -> str:
    """The directory every user's root lies in: the template up to ``{user}``'s component."""
    if USER not in template:
        return template
    return os.path.dirname(template[: template.index(USER)]) or "/"


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def read_into(
    root: Path, parts: list[str], target: Path, progress: Callable[[int], None] | None = None
) -> None:
    """Copy the regular file ``parts`` below ``root`` to ``target`` (a temporary file renamed
    into place), opened by descriptors from the root: a link leading out of it is refused.
    ``progress`` is told each chunk and may raise (the plan's limit): nothing is then kept."""
    real = Path(os.path.realpath(root))
    try:
        with safe_path.locate(real, parts) as found:
            fd = safe_path.open_regular(found)
    except LwrError as exc:
        raise _refused(real, parts, exc) from None
    tmp = target.parent / f".lwr-file-{target.name}"
    try:
        with os.fdopen(fd, "rb") as source, open(tmp, "wb") as out:
            while chunk := source.read(1024 * 1024):
                if progress is not None:
                    progress(len(chunk))
                out.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def files_below(root: Path, parts: list[str]) -> list[list[str]]:
    """The files below the directory ``parts`` of ``root`` (a ``DIRECTORY`` input), each as
    components below it. Only names are listed here; every file is then opened by
    :func:`read_into` from the root, so a link among them that leads out is refused there."""
    real = os.path.realpath(root)
    top = os.path.realpath(os.path.join(real, *parts))
    if not _within(top, real) or top == real:
        raise StagingError(f"refused {_shown(Path(real), parts)}: it leads out of {real}")
    if not os.path.isdir(top):
        raise StagingError(f"{_shown(Path(real), parts)} is not a directory")
    found: list[list[str]] = []
    for folder, _dirs, files in os.walk(top):  # links to directories are not descended
        inner = os.path.relpath(folder, top)
        prefix = [] if inner == "." else inner.split(os.sep)
        found.extend([*prefix, name] for name in sorted(files))
    return found


def write_from(source: Path, root: Path, parts: list[str]) -> None:
    """Write ``source`` to ``parts`` below ``root`` (directories made inside it), through a
    temporary file renamed over the name: a link there is replaced, never followed out."""
    real = Path(os.path.realpath(root))
    try:
        with safe_path.locate(real, parts, create=True) as found:
            if safe_path.is_directory(found):
                raise StagingError(f"{_shown(real, parts)} is a directory")
            fd, tmp_name = safe_path.open_temporary(found.dir_fd, ".lwr-file-")
            try:
                with open(source, "rb") as data, os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(data, out, 1024 * 1024)
                safe_path.put_in_place(found, tmp_name)
            except BaseException:
                safe_path.discard(found, tmp_name)
                raise
    except StagingError:
        raise
    except LwrError as exc:
        raise _refused(real, parts, exc) from None


def _refused(root: Path, parts: list[str], exc: LwrError) -> StagingError:
    """The reason a confined open failed, in words about the user's root (not a job's)."""
    if isinstance(exc, AuthorizationError):
        why = f"a symbolic link on the way leads out of {root}; it is not followed"
    elif isinstance(exc, NotFoundError):
        why = "it does not exist"
    else:
        why = exc.message
    return StagingError(f"refused {_shown(root, parts)}: {why} (tes_user_file_roots)")


def _shown(root: Path, parts: list[str]) -> str:
    return "file://" + str(root.joinpath(*parts))
