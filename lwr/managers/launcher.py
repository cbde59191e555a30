"""Which program starts a local job: ``bash`` with the job script, or Python where there is no bash.

The local backends run the job script (:mod:`lwr.managers.script`) with bash. A Windows server has
no bash, so every job would fail before its command ran. The *python* launcher
(:mod:`lwr.managers.launch_python`) does the script's work itself — directories, environment,
dependencies, streams, return code — and hands only the command to the platform's own shell
(``cmd.exe`` on Windows, ``/bin/sh`` elsewhere). It reads the job from ``job.json``, which the
stateful layer writes beside ``job.sh`` for every job, so either launcher can start any job and a
server can switch launchers between restarts.

A manager's ``launcher`` option picks one: ``auto`` (the default) takes bash when it is on the
``PATH`` (never on Windows, see :func:`choose`) and Python otherwise; ``bash`` and ``python``
force one. CI forces ``python`` on Linux,
which is how the launcher is tested: nothing here has run on Windows.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwr.errors import ConfigurationError
from lwr.managers.base import LaunchSpec
from lwr.managers.directory import LAUNCH_NAME, JobDirectory
from lwr.managers.script import env_raw, environment_lines, with_job_directory

LAUNCHERS = ("auto", "bash", "python")
#: the module run as ``python -I -m`` for the python launcher
PYTHON_LAUNCHER_MODULE = "lwr.managers.launch_python"
#: the version of ``job.json``; the launcher refuses one it does not know
SPEC_VERSION = 1


@dataclass(frozen=True)
class Launcher:
    """A chosen launcher: its name and the program (argv prefix) that starts a job with it."""

    name: str
    program: tuple[str, ...]

    def argv(self, spec: LaunchSpec) -> list[str]:
        """The command line that starts ``spec``: bash gets the script, Python the directory."""
        target = spec.job_directory if self.name == "python" else spec.script
        return [*self.program, str(target)]


def choose(
    value: str,
    which: Callable[[str], str | None] = shutil.which,
    windows: bool = sys.platform == "win32",
) -> Launcher:
    """The launcher a manager's ``launcher`` option asks for, checked at start-up.

    ``auto`` means bash where there is one, except on Windows: the ``bash`` found there is
    usually WSL's, which would run the script inside Linux where the job's Windows paths mean
    nothing, so Windows gets the python launcher unless ``bash`` is asked for by name.
    ``which`` and ``windows`` are injectable so tests can play either host.
    """
    value = (value or "auto").strip().lower()
    if value not in LAUNCHERS:
        raise ConfigurationError(f"launcher must be one of {', '.join(LAUNCHERS)}, not {value!r}")
    bash = which("bash")
    if value == "bash" and bash is None:
        raise ConfigurationError("launcher = bash, but there is no bash on the PATH")
    if bash is not None and (value == "bash" or (value == "auto" and not windows)):
        return Launcher("bash", (bash,))
    return Launcher("python", (sys.executable, "-I", "-m", PYTHON_LAUNCHER_MODULE))


def write_spec(
    directory: JobDirectory,
    job_id: str,
    attempt: int,
    command_line: str,
    env: Iterable[Mapping[str, Any]] | None = None,
    dependency_files: Sequence[Path] = (),
) -> Path:
    """Write ``job.json``, the python launcher's view of the job (atomically); return its path.

    The same inputs as :func:`lwr.managers.script.render`, checked the same way (the environment
    names through :func:`~lwr.managers.script.environment_lines`), so both launchers accept and
    refuse exactly the same jobs.
    """
    entries = list(env or ())
    environment_lines(entries)
    spec = {
        "version": SPEC_VERSION,
        "job_id": job_id,
        "attempt": attempt,
        "job_directory": os.path.abspath(directory.root),
        "working_directory": os.path.abspath(directory.sub("working")),
        "home_directory": os.path.abspath(directory.sub("home")),
        "tmp_directory": os.path.abspath(directory.sub("tmp")),
        "command_line": with_job_directory(command_line, directory),
        "env": [
            {
                "name": str(entry["name"]),
                "value": "" if entry.get("value") is None else str(entry.get("value")),
                "raw": env_raw(entry),
            }
            for entry in entries
        ],
        "dependencies": [os.path.abspath(path) for path in dependency_files],
    }
    path = directory.control(LAUNCH_NAME)
    tmp = path.with_name(path.name + ".tmp")
    # no indent: json's C encoder only serves compact output, and every submit writes this
    tmp.write_text(json.dumps(spec), encoding="utf-8")
    os.replace(tmp, path)
    return path
