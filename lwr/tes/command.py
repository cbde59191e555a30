"""A task's executors as one shell command line for the job script.

The job script (:mod:`lwr.managers.script`) runs one command line and records its return code;
this module writes that command line so it runs the task's executors one after another, each with
its own working directory, environment and stdin/stdout/stderr, and records per executor its start
and end time, exit code and streams in the job's ``metadata/tes/`` directory (read back by
:mod:`lwr.tes.views`). The first executor that fails ends the task with its exit code unless it has
``ignore_error``; so the job's return code is non-zero exactly when the task is an executor error.

Everything the task supplies reaches the shell through ``shlex.quote`` (arguments, paths, values)
or a checked variable name, so no task text is ever interpreted by the shell. With
``container_runtime = none`` the commands run on the host, the declared container paths rewritten
to their places in the task root (:mod:`lwr.tes.paths`); with a container runtime the command is
that runtime's ``run`` with the task root's directories bound at their container paths.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lwr.tes import paths
from lwr.tes.models import Executor, Task

#: the job sub-directory (inside ``metadata``) holding the per-executor records
LOG_SUBDIR = "tes"
RUNTIMES = ("none", "docker", "podman", "apptainer")


@dataclass(frozen=True)
class Streams:
    """Where one executor's stdin, stdout and stderr go on the host."""

    stdin: Path | None
    stdout: Path
    stderr: Path


def streams(task: Task, index: int, root: Path, logs: Path) -> Streams:
    """Executor ``index``'s streams: its declared files, else files of the task's records."""
    executor = task.executors[index]
    return Streams(
        stdin=paths.host_path(root, executor.stdin) if executor.stdin else None,
        stdout=paths.host_path(root, executor.stdout)
        if executor.stdout
        else logs / f"{index}.stdout",
        stderr=paths.host_path(root, executor.stderr)
        if executor.stderr
        else logs / f"{index}.stderr",
    )


def command_line(task: Task, root: Path, logs: Path, runtime: str = "none") -> str:
    """The shell text that runs every executor of ``task`` in order (see the module docstring)."""
    rewrite = paths.rewriter(root, paths.declared_paths(task)) if runtime == "none" else _same
    lines = [
        f"_tes_logs={shlex.quote(str(logs))}",
        'mkdir -p "$_tes_logs"',
        *(f"mkdir -p {shlex.quote(str(d))}" for d in _directories(task, root)),
    ]
    for index, executor in enumerate(task.executors):
        lines.extend(_executor_lines(task, index, executor, root, logs, runtime, rewrite))
    lines.append("exit 0")
    return "\n".join(lines)


def _executor_lines(
    task: Task,
    index: int,
    executor: Executor,
    root: Path,
    logs: Path,
    runtime: str,
    rewrite: Callable[[str], str],
) -> list[str]:
    where = streams(task, index, root, logs)
    workdir = paths.host_path(root, executor.workdir) if executor.workdir else root
    if runtime == "none":
        env = [
            f"export {name}={shlex.quote(rewrite(value))}" for name, value in executor.env.items()
        ]
        body = [f"cd {shlex.quote(str(workdir))} || exit 127", *env,
                "exec " + shlex.join(rewrite(arg) for arg in executor.command)]  # fmt: skip
    else:
        body = ["exec " + shlex.join(container_argv(runtime, task, executor, root))]
    stdin = shlex.quote(str(where.stdin)) if where.stdin else "/dev/null"
    stamp = "date -u +%Y-%m-%dT%H:%M:%SZ"
    lines = [
        f"# executor {index}: image {_comment(executor.image)}"
        + (" (not used: container_runtime = none)" if runtime == "none" else ""),
        f'{stamp} > "$_tes_logs/{index}.start"',
        "(",
        *(f"    {line}" for line in body),
        f") < {stdin} > {shlex.quote(str(where.stdout))} 2> {shlex.quote(str(where.stderr))}",
        "_tes_exit=$?",
        f'echo "$_tes_exit" > "$_tes_logs/{index}.exit_code"',
        f'{stamp} > "$_tes_logs/{index}.end"',
    ]
    if not executor.ignore_error:
        lines.append('[ "$_tes_exit" -eq 0 ] || exit "$_tes_exit"')
    return lines


#: per runtime: its run command, and its flags for a bind, the working directory, a variable
_RUNTIME_FLAGS = {
    "docker": (("docker", "run", "--rm", "-i"), "-v", "-w", "-e"),
    "podman": (("podman", "run", "--rm", "-i"), "-v", "-w", "-e"),
    "apptainer": (("apptainer", "exec", "--containall", "--cleanenv"), "--bind", "--pwd", "--env"),
}


def container_argv(runtime: str, task: Task, executor: Executor, root: Path) -> list[str]:
    """The ``run`` command of a container runtime for one executor (argv, not shell text).

    Each top-level directory the task declares (``/data`` of ``/data/in.txt``) is bound from the
    task root at the same container path, so every executor sees the same files.
    """
    run, bind, workdir, env = _RUNTIME_FLAGS[runtime]
    argv = list(run)
    for top in sorted({p.strip("/").split("/")[0] for p in paths.declared_paths(task) if p != "/"}):
        argv += [bind, f"{root / top}:/{top}"]
    if executor.workdir:
        argv += [workdir, executor.workdir]
    for name, value in executor.env.items():
        argv += [env, f"{name}={value}"]
    image = f"docker://{executor.image}" if runtime == "apptainer" else executor.image
    return [*argv, image, *executor.command]


def _directories(task: Task, root: Path) -> list[Path]:
    """Directories that must exist before the first executor: volumes, workdirs, stream parents."""
    found = [paths.host_path(root, v) for v in task.volumes]
    for executor in task.executors:
        if executor.workdir:
            found.append(paths.host_path(root, executor.workdir))
        for stream in (executor.stdout, executor.stderr):
            if stream:
                found.append(paths.host_path(root, stream).parent)
    for output in task.outputs:
        target = output.path_prefix if output.is_glob and output.path_prefix else output.path
        host = paths.host_path(root, target)
        found.append(host if output.is_glob else host.parent)  # a DIRECTORY is the task's to make
    return sorted(set(found))


def _same(text: str) -> str:
    return text


def _comment(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")
