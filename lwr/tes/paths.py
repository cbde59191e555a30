"""Where a task's container paths live on the host: below the job's working directory.

A TES task names absolute paths as its containers would see them (``/data/in.txt``). LWR gives
every task a root of its own, the job's ``working`` directory, and a container path ``/a/b``
lives at ``<root>/a/b``. Every such path goes through :func:`parts` (the job directory's own name
checks: no ``..``, no NUL), so nothing a task names can point outside its job.

With ``container_runtime = none`` no container maps those paths, so the paths the task declared
(inputs, outputs, volumes, executor workdirs and streams) are rewritten in each command argument,
environment value, and ``content`` input that an executor runs as a script, to their host places
(:func:`rewriter`). Only whole declared paths, or
paths below them, are rewritten: ``/data`` rewrites ``/data/x`` but not ``/database``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from lwr.managers.directory import split_name
from lwr.tes.models import Task

#: the job sub-directory that is the task's root ("/"), and its file type for the job directory
ROOT_TYPE = "workdir"
ROOT_SUBDIR = "working"


def parts(container_path: str) -> list[str]:
    """The checked components of an absolute container path (``[]`` for ``/`` itself)."""
    relative = container_path.lstrip("/")
    return split_name(relative) if relative else []


def relative(container_path: str) -> str:
    """The container path relative to the task root, checked (``""`` for the root)."""
    return "/".join(parts(container_path))


def host_path(root: Path, container_path: str) -> Path:
    """Where ``container_path`` lives below ``root`` (checked by name, not opened)."""
    return root.joinpath(*parts(container_path))


def declared_paths(task: Task) -> list[str]:
    """Every container path the task declares: what a none runtime rewrites in commands."""
    found: list[str] = [i.path for i in task.inputs]
    for output in task.outputs:
        found.append(output.path_prefix if output.is_glob and output.path_prefix else output.path)
    found.extend(task.volumes)
    for executor in task.executors:
        found.extend(p for p in (executor.workdir, executor.stdin, executor.stdout,
                                 executor.stderr) if p)  # fmt: skip
    return sorted({p.rstrip("/") or "/" for p in found if p.rstrip("/")}, key=len, reverse=True)


def rewriter(root: Path, declared: Iterable[str]) -> Callable[[str], str]:
    """A function rewriting declared container paths in a string to their host places."""
    paths = sorted(set(declared), key=len, reverse=True)
    if not paths:
        return lambda text: text
    # a declared path counts where it starts a word and does not continue a longer name
    pattern = re.compile(
        r"(?<![\w.\-/])(" + "|".join(re.escape(p) for p in paths) + r")(?![\w.\-])"
    )
    base = str(root).rstrip("/")

    def rewrite(text: str) -> str:
        return pattern.sub(lambda m: base + m.group(1), text)

    return rewrite
