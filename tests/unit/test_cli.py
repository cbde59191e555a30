"""The ``lwr`` command's own behaviour that needs no server: refusals and interrupts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr import cli, daemon


@pytest.mark.parametrize("flag", ["--daemon", "--stop-daemon"])
def test_daemon_flags_on_windows_point_to_the_service_docs(
    flag: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No fork on Windows, and ``os.kill(pid, 0)`` would kill the server it probes: refuse."""
    monkeypatch.setattr(daemon, "IS_WINDOWS", True)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["serve", flag]) == 2
    err = capsys.readouterr().err
    assert "POSIX-only" in err and "docs/windows.md" in err and "nssm install" in err
    assert "Traceback" not in err
    assert not (tmp_path / "server.ini").exists()  # refused before touching anything


def test_ctrl_c_in_any_command_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lwr.client import commands

    def interrupted(*_args: object, **_kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(commands.KnownJobs, "all", interrupted)
    assert cli.main(["list"]) == 130
    assert capsys.readouterr().err == "lwr: interrupted\n"
