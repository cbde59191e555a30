"""The python launcher: run one job as the bash job script would, without bash.

    python -I -m lwr.managers.launch_python JOB_DIRECTORY

Reads ``JOB_DIRECTORY/job.json`` (written by :func:`lwr.managers.launcher.write_spec`) and does
what ``job.sh`` does, in the same order and with the same files: removes a stale return code,
creates the job's home and tmp directories, builds the environment (``_GALAXY_JOB_*``, ``TMPDIR``
/ ``TMP`` / ``TEMP`` unless set, then the client's entries in order), enters the working directory
(127 if it cannot), runs the command through the platform's shell with its streams in ``stdout``
and ``stderr``, and writes the return code last (128 + N for a command killed by signal N, as a
shell reports it). The launcher's own messages go to its stderr, which the local backend keeps in
``job_stderr``. It exits 0 once the return code is on disk, like the script.

Differences from the bash script, on purpose and documented: ``raw`` environment values get
``$NAME``/``${NAME}`` expansion (and ``%NAME%`` on Windows), not full shell evaluation; on
Windows a dependency's ``env.sh`` cannot be sourced, so an ``env.bat`` or ``env.cmd`` beside it is
``call``-ed instead (and a warning is written when there is none).

Only the standard library and LWR's file-name constants are imported: this runs once per job.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from lwr.managers.directory import (
    BATCH_NAME,
    LAUNCH_NAME,
    RETURN_CODE_NAME,
    STDERR_NAME,
    STDOUT_NAME,
)

IS_WINDOWS = sys.platform == "win32"
SPEC_VERSION = 1
#: the return code recorded when the command could not be started at all (as a shell does)
CANNOT_RUN = 127

_POSIX_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_WINDOWS_VARIABLE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job in the directory given as the only argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m lwr.managers.launch_python JOB_DIRECTORY\n")
        return 2
    job_directory = Path(args[0])
    try:
        spec = json.loads((job_directory / LAUNCH_NAME).read_text(encoding="utf-8"))
        if spec.get("version") != SPEC_VERSION:
            raise ValueError(f"unsupported {LAUNCH_NAME} version {spec.get('version')!r}")
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"LWR: cannot read the job description: {exc}\n")
        record(job_directory, CANNOT_RUN)
        return 0
    return run(spec, sys.stderr, windows=IS_WINDOWS)


def run(spec: Mapping[str, Any], messages: TextIO, windows: bool) -> int:
    """The body of the launcher, for one parsed ``job.json``."""
    job_directory = Path(spec["job_directory"])
    (job_directory / RETURN_CODE_NAME).unlink(missing_ok=True)
    for key in ("home_directory", "tmp_directory"):
        Path(spec[key]).mkdir(parents=True, exist_ok=True)
    environment = job_environment(spec, os.environ, windows)
    working = Path(spec["working_directory"])
    if not working.is_dir():
        messages.write(f"LWR: cannot enter the working directory {working}\n")
        record(job_directory, CANNOT_RUN)
        return 0
    command = shell_command(spec, job_directory, windows, messages)
    with (
        open(job_directory / STDOUT_NAME, "wb") as out,
        open(job_directory / STDERR_NAME, "wb") as err,
    ):
        try:
            child = subprocess.Popen(
                command,
                cwd=working,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        except OSError as exc:
            messages.write(f"LWR: cannot start the shell: {exc}\n")
            record(job_directory, CANNOT_RUN)
            return 0
        code = child.wait()
    record(job_directory, shell_return_code(code))
    return 0


def job_environment(
    spec: Mapping[str, Any], inherited: Mapping[str, str], windows: bool
) -> dict[str, str]:
    """The command's environment: the server's, the job's directories, the client's entries."""
    env: dict[str, str] = dict(inherited)
    put(env, "_GALAXY_JOB_DIR", spec["working_directory"], windows)
    put(env, "_GALAXY_JOB_HOME_DIR", spec["home_directory"], windows)
    put(env, "_GALAXY_JOB_TMP_DIR", spec["tmp_directory"], windows)
    for name in ("TMPDIR", "TMP", "TEMP"):
        if not lookup(env, name, windows):
            put(env, name, spec["tmp_directory"], windows)
    for entry in spec.get("env") or ():
        value = str(entry.get("value") or "")
        if entry.get("raw"):
            value = expand(value, env, windows)
        put(env, str(entry["name"]), value, windows)
    return env


def expand(value: str, env: Mapping[str, str], windows: bool) -> str:
    """``$NAME`` and ``${NAME}`` (unset: empty, as in a shell); also ``%NAME%`` on Windows."""
    value = _POSIX_VARIABLE.sub(
        lambda match: lookup(env, match.group(1) or match.group(2), windows) or "", value
    )
    if windows:
        value = _WINDOWS_VARIABLE.sub(
            lambda match: lookup(env, match.group(1), windows) or match.group(0), value
        )
    return value


def lookup(env: Mapping[str, str], name: str, windows: bool) -> str | None:
    """A variable's value; names are case-insensitive on Windows."""
    if windows:
        name = name.upper()
        return next((v for k, v in env.items() if k.upper() == name), None)
    return env.get(name)


def put(env: MutableMapping[str, str], name: str, value: str, windows: bool) -> None:
    if windows:
        for key in [k for k in env if k.upper() == name.upper()]:
            del env[key]
    env[name] = value


def shell_command(
    spec: Mapping[str, Any], job_directory: Path, windows: bool, messages: TextIO
) -> list[str] | str:
    """What to start: ``/bin/sh -c`` with the dependencies sourced, or cmd.exe with ``job.bat``.

    cmd.exe cannot take a multi-line command on its command line, so on Windows the command goes
    into ``job.bat`` (CRLF line ends) and cmd.exe runs that file; the quoting follows cmd.exe's
    own ``/s /c ""file""`` rule, which is why a string and not a list is returned there.
    """
    dependencies = [Path(p) for p in spec.get("dependencies") or ()]
    command = str(spec["command_line"])
    if not windows:
        sources = "".join(f". {shlex.quote(str(path))}\n" for path in dependencies)
        return ["/bin/sh", "-c", sources + command]
    lines = ["@echo off"]
    for path in dependencies:
        batch = next(
            (c for c in (path.with_suffix(".bat"), path.with_suffix(".cmd")) if c.is_file()), None
        )
        if batch is None:
            messages.write(f"LWR: {path} needs a POSIX shell; no env.bat/env.cmd beside it\n")
        else:
            lines.append(f'call "{batch}"')
    lines.extend(command.splitlines())
    lines.append("exit /b %ERRORLEVEL%")
    batch_file = job_directory / BATCH_NAME
    batch_file.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    comspec = os.environ.get("COMSPEC", "cmd.exe")
    return f'"{comspec}" /d /s /c ""{batch_file}""'


def shell_return_code(code: int) -> int:
    """Popen's code as a shell reports it: a command killed by signal N gives 128 + N."""
    return 128 - code if code < 0 else code


def record(job_directory: Path, code: int) -> None:
    """Write the return code, last and atomically: readers trust the file once it exists."""
    path = job_directory / RETURN_CODE_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{code}\n", encoding="ascii")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
