"""Choosing the launcher, and the python launcher's Windows half (which nothing here can run).

What the python launcher does on this machine is checked by running it: every test of
``test_script.py`` runs with both launchers, and so do the local backend's tests and the
``pulsar.client`` scenarios. Here: the choice of launcher, and the pure functions that build the
Windows command and environment, checked by their text.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from lwr.errors import ConfigurationError
from lwr.managers import launch_python, launcher
from lwr.managers.base import LaunchSpec


def no_bash(_name: str) -> str | None:
    return None


def has_bash(_name: str) -> str | None:
    return "/usr/bin/bash"


def spec(tmp_path: Path) -> LaunchSpec:
    return LaunchSpec("m", "7", 1, tmp_path, tmp_path / "working", tmp_path / "job.sh")


def test_auto_takes_bash_when_there_is_one(tmp_path: Path) -> None:
    chosen = launcher.choose("auto", which=has_bash, windows=False)
    assert chosen.name == "bash"
    assert chosen.argv(spec(tmp_path)) == ["/usr/bin/bash", str(tmp_path / "job.sh")]


def test_auto_takes_python_without_bash(tmp_path: Path) -> None:
    chosen = launcher.choose("auto", which=no_bash, windows=False)
    assert chosen.name == "python"
    assert chosen.argv(spec(tmp_path)) == [
        sys.executable,
        "-I",
        "-m",
        "lwr.managers.launch_python",
        str(tmp_path),
    ]


def test_auto_on_windows_is_python_even_with_a_bash_on_the_path() -> None:
    """C:\\Windows\\System32\\bash.exe is WSL's: it would run job.sh inside Linux."""
    assert launcher.choose("auto", which=has_bash, windows=True).name == "python"
    assert launcher.choose("bash", which=has_bash, windows=True).name == "bash"


def test_python_can_be_forced_where_bash_exists() -> None:
    assert launcher.choose("Python", which=has_bash).name == "python"


def test_bash_forced_without_bash_is_a_start_up_error() -> None:
    with pytest.raises(ConfigurationError, match="no bash on the PATH"):
        launcher.choose("bash", which=no_bash)


def test_unknown_launcher_is_named() -> None:
    with pytest.raises(ConfigurationError, match="'zsh'"):
        launcher.choose("zsh", which=has_bash)


def test_windows_command_is_a_batch_file_run_by_cmd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMSPEC", r"C:\Windows\system32\cmd.exe")
    with_bat = tmp_path / "deps" / "a" / "1.0" / "env.sh"
    with_bat.parent.mkdir(parents=True)
    with_bat.write_text("export A=1\n")
    with_bat.with_suffix(".bat").write_text("set A=1\r\n")
    without = tmp_path / "deps" / "b" / "2.0" / "env.sh"
    messages = io.StringIO()
    job = {"command_line": "echo one\necho two", "dependencies": [str(with_bat), str(without)]}
    command = launch_python.shell_command(job, tmp_path, True, messages)
    batch = tmp_path / "job.bat"
    assert command == rf'"C:\Windows\system32\cmd.exe" /d /s /c ""{batch}""'
    assert batch.read_bytes().decode() == (
        f'@echo off\r\ncall "{with_bat.with_suffix(".bat")}"\r\n'
        "echo one\r\necho two\r\nexit /b %ERRORLEVEL%\r\n"
    )
    assert f"{without} needs a POSIX shell" in messages.getvalue()


def test_posix_command_sources_dependencies_with_sh(tmp_path: Path) -> None:
    job = {"command_line": "echo hi", "dependencies": ["/deps/sam tools/env.sh"]}
    command = launch_python.shell_command(job, tmp_path, False, io.StringIO())
    assert command == ["/bin/sh", "-c", ". '/deps/sam tools/env.sh'\necho hi"]


def test_windows_environment_is_case_insensitive_and_expands_percent() -> None:
    job = {
        "working_directory": r"C:\jobs\7\working",
        "home_directory": r"C:\jobs\7\home",
        "tmp_directory": r"C:\jobs\7\tmp",
        "env": [
            {"name": "Path", "value": r"C:\tools;%PATH%;$UNSET", "raw": True},
            {"name": "LITERAL", "value": "%PATH%", "raw": False},
            {"name": "KEEP", "value": "%NOT_SET%", "raw": True},
        ],
    }
    env = launch_python.job_environment(job, {"PATH": r"C:\Windows", "TEMP": r"C:\t"}, True)
    assert env["Path"] == r"C:\tools;C:\Windows;" and "PATH" not in env
    assert env["LITERAL"] == "%PATH%"
    assert env["KEEP"] == "%NOT_SET%"  # cmd.exe leaves unknown %NAMES% as written
    assert env["TEMP"] == r"C:\t" and env["TMP"] == r"C:\jobs\7\tmp"
    assert env["_GALAXY_JOB_DIR"] == r"C:\jobs\7\working"


def test_signal_deaths_are_reported_as_a_shell_would() -> None:
    assert launch_python.shell_return_code(-9) == 137
    assert launch_python.shell_return_code(3) == 3
