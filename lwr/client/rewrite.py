"""Finding paths in a command line and config files, and rewriting them to the server's paths.

Pure text work, kept apart from the staging that decides *which* paths move, so it can be tested
on strings alone. Two properties matter:

* Rewriting is one pass over the text with every local path at once, longest first. Replacing
  paths one after another (as a chain of ``str.replace``) can rewrite inside a path already
  rewritten — ``/tmp`` inside ``/tmp/lwr/staging/...`` — and produce nonsense.
* References are found as whole path tokens (an absolute path not glued to a preceding word), and
  then matched with the same rule code the server uses, so ``prefix``, ``glob`` and ``regex`` rules
  find exactly the paths they would be asked about.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable

#: an absolute POSIX path on a command line or in a config file: starts after a separator-like
#: character (space, quote, ``=``, ``:``...) and runs until whitespace, a quote or shell syntax
_PATH_TOKEN = re.compile(r"""(?<![\w./~-])(/(?!/)[^\s'"`,;|<>()]+)""")


class PathRewriter:
    """Collects local → remote renames and applies them all in a single pass."""

    def __init__(self) -> None:
        self.renames: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    def add(self, local: str, remote: str) -> None:
        """Rewrite ``local`` as ``remote`` (a later registration of the same path wins)."""
        if local and local != remote:
            self.renames[local] = remote
            self._pattern = None

    def apply(self, text: str) -> str:
        """``text`` with every registered local path replaced, longest match first."""
        if not self.renames:
            return text
        if self._pattern is None:
            ordered = sorted(self.renames, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(p) for p in ordered))
        return self._pattern.sub(lambda m: self.renames[m.group(0)], text)


def path_tokens(texts: Iterable[str]) -> list[str]:
    """Every absolute path mentioned in ``texts``, in order of first appearance, without repeats."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in _PATH_TOKEN.finditer(text):
            seen.setdefault(match.group(1).rstrip("."), None)
    return list(seen)


def references_below(texts: Iterable[str], directory: str) -> list[str]:
    """The paths mentioned in ``texts`` that lie below ``directory``."""
    root = directory.rstrip(os.sep) + os.sep
    return [p for p in path_tokens(texts) if p.startswith(root)]


def is_referenced(texts: Iterable[str], path: str) -> bool:
    """Whether ``path`` appears in any of ``texts`` (a dataset not used is not worth sending)."""
    return any(path in text for text in texts)


def unstructured_files(path: str, depth: int) -> dict[str, str]:
    """The files staged for a referenced ``path``: itself, or every file ``depth`` levels up.

    The values are the names relative to that top directory, so an index and its siblings keep
    their layout (``bwa/human.fa`` beside ``bwa/human.fa.fai``).
    """
    if depth <= 0:
        return {path: os.path.basename(path)}
    top = path
    for _ in range(depth):
        top = os.path.dirname(top)
    return {os.path.join(top, name): name for name in directory_files(top)}


def directory_files(directory: str) -> list[str]:
    """Every file below ``directory``, as sorted relative names."""
    found = []
    for parent, _dirs, files in os.walk(directory):
        relative = os.path.relpath(parent, directory)
        for name in files:
            found.append(name if relative == os.curdir else os.path.join(relative, name))
    return sorted(found)


def unique_prefix(path: str) -> str:
    """A directory name unique to ``path``, so two index trees never collide on the server.

    The MD5 of the path, as Galaxy's client computes it (a name, not a security measure).
    """
    return hashlib.md5(path.encode("utf-8"), usedforsecurity=False).hexdigest()


def remote_join(separator: str, directory: str, name: str) -> str:
    """``directory`` + ``name`` (a local relative name) in the server's path syntax."""
    parts = [p for p in name.split(os.sep) if p]
    return separator.join([directory.rstrip(separator), *parts])
