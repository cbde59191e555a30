"""``lwr balancer``: status and kill answers an init script relies on, the re-exec argv."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lwr.balancer import cli
from lwr.cli import main


def test_status_of_a_stopped_balancer_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pidfile = tmp_path / "balancer.pid"
    pidfile.write_text("999999999\n")  # no such process
    assert (
        main(
            [
                "balancer",
                "--conf",
                str(tmp_path / "none.ini"),
                "--pidfile",
                str(pidfile),
                "--status",
            ]
        )
        == cli.NOT_RUNNING
    )
    assert "stopped" in capsys.readouterr().out


def test_kill_without_a_daemon_fails(tmp_path: Path) -> None:
    assert main(["balancer", "--pidfile", str(tmp_path / "none.pid"), "--kill"]) == 1


def test_a_bad_config_is_one_line_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "balancer.ini").write_text("[load table]\n0 2 1\n")
    code = main(
        ["balancer", "--conf", str(tmp_path / "balancer.ini"), "--pidfile", str(tmp_path / "b.pid")]
    )
    assert code == 1
    assert "[load table] line 2: '0 2 1': min 2 is above max 1" in capsys.readouterr().err


def test_the_reexec_command_line_keeps_every_flag_but_the_keys() -> None:
    args = argparse.Namespace(
        conf="b.ini",
        pidfile="b.pid",
        verbosity=2,
        logfile="b.log",
        user="lwr",
        ssh_key="admin",
        background=True,
        access_key="AKIA",
        secret_key="s3cret",
    )
    argv = cli._argv_without_keys(args)
    assert "AKIA" not in argv and "s3cret" not in argv
    assert argv == [
        "--conf",
        "b.ini",
        "--pidfile",
        "b.pid",
        "--verbosity",
        "2",
        "--logfile",
        "b.log",
        "--user",
        "lwr",
        "--ssh_key",
        "admin",
        "--background",
    ]


def test_user_must_exist(tmp_path: Path) -> None:
    from lwr.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no such user"):
        cli._drop_privileges("no-such-user-here", [], tmp_path)


def test_user_drops_root_for_good(tmp_path: Path) -> None:
    """As root: the state and pid files go to the user, the process becomes it (in a child, so
    the test process keeps its identity). Not root: asking for another user is refused."""
    import os
    import pwd

    from lwr.errors import ConfigurationError

    nobody = pwd.getpwnam("nobody")
    pidfile, state = tmp_path / "b.pid", tmp_path / "state"
    if os.geteuid() != 0:
        with pytest.raises(ConfigurationError, match="started as root"):
            cli._drop_privileges("nobody", [pidfile], state)
        return
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            cli._drop_privileges("nobody", [pidfile], state)
            ok = os.getuid() == nobody.pw_uid and os.geteuid() == nobody.pw_uid
            try:
                os.setuid(0)
                ok = False  # could go back to root
            except PermissionError:
                pass
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pidfile.stat().st_uid == nobody.pw_uid and state.stat().st_uid == nobody.pw_uid


def test_the_sample_systemd_unit_runs_the_balancer_with_known_flags() -> None:
    import configparser
    import shlex

    unit = Path(__file__).resolve().parents[3] / "scripts" / "lwr-balancer.service"
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    argv = shlex.split(parser["Service"]["ExecStart"])
    assert argv[0].endswith("/lwr") and argv[1] == "balancer"
    parsed = _parser().parse_args(argv[1:])
    assert parsed.conf.endswith("balancer.ini") and not parsed.background
    assert parser["Service"]["KillMode"] == "process"
    assert "--access_key" not in argv and "--secret_key" not in argv


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser


def test_a_pid_file_in_a_directory_not_ours_is_left_for_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``--user`` the daemon cannot unlink a pid file in root's directory: no traceback."""
    pidfile = tmp_path / "balancer.pid"
    pidfile.write_text("1\n")

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    cli._remove_pidfile(pidfile)
    assert pidfile.exists()
