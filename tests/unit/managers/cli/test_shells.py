"""Shells: the local one for real, the ssh one by the command line it builds."""

from __future__ import annotations

import shlex
import sys
import time

import pytest

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers.cli.shells.local import LocalShell
from lwr.managers.cli.shells.ssh import SecureShell


def test_local_shell_returns_output_and_exit_code() -> None:
    result = LocalShell().execute(
        [
            sys.executable,
            "-c",
            "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
        ],
        timeout=10,
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok
    assert result.argv[0] == sys.executable


def test_local_shell_passes_arguments_untouched_and_feeds_input() -> None:
    tricky = "a b; echo $HOME 'q' \"d\""
    result = LocalShell().execute(
        [sys.executable, "-c", "import sys; print(sys.argv[1]); print(sys.stdin.read())", tricky],
        timeout=10,
        input="from stdin",
    )
    assert result.stdout == f"{tricky}\nfrom stdin\n"


def test_local_shell_closes_stdin_when_no_input() -> None:
    result = LocalShell().execute(
        [sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"], timeout=10
    )
    assert result.stdout == "''\n"


def test_local_shell_kills_a_command_that_outlives_its_timeout() -> None:
    started = time.monotonic()
    # the grandchild shares the process group: it must die too, or communicate() would wait
    with pytest.raises(SubmitError, match=r"timed out after 0\.5 s") as caught:
        LocalShell().execute(["sh", "-c", "echo partial; sleep 30 & sleep 30"], timeout=0.5)
    assert time.monotonic() - started < 5
    assert caught.value.argv[0] == "sh"
    assert caught.value.stdout == "partial\n"


def test_local_shell_reports_a_missing_program() -> None:
    with pytest.raises(SubmitError, match="cannot run 'no-such-program-lwr'"):
        LocalShell().execute(["no-such-program-lwr"], timeout=5)


def test_local_shell_refuses_ssh_options() -> None:
    with pytest.raises(ConfigurationError, match="shell_hostname"):
        LocalShell({"hostname": "h"})


def ssh(**options: str) -> SecureShell:
    return SecureShell(options)


def test_ssh_argv_is_batch_mode_with_strict_host_keys_by_default() -> None:
    argv = ssh(hostname="submit.example.org").ssh_argv(["squeue", "-h"])
    assert argv[0] == "ssh"
    assert argv[-3:] == ["--", "submit.example.org", "squeue -h"]
    options = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    assert "BatchMode=yes" in options
    assert "StrictHostKeyChecking=yes" in options
    assert not any(o.startswith("UserKnownHostsFile") for o in options)
    assert "-i" not in argv and "-p" not in argv and "-l" not in argv


def test_ssh_argv_carries_user_key_port_and_known_hosts() -> None:
    shell = ssh(
        hostname="h",
        username="galaxy",
        private_key="/keys/id",
        port="2222",
        known_hosts="/keys/known_hosts",
        strict_host_key_checking="accept-new",
    )
    argv = shell.ssh_argv(["true"])
    joined = " ".join(argv)
    assert "-i /keys/id -o IdentitiesOnly=yes" in joined
    assert "-p 2222" in joined and "-l galaxy" in joined
    assert "UserKnownHostsFile=/keys/known_hosts" in joined
    assert "StrictHostKeyChecking=accept-new" in joined
    assert shell.describe() == "galaxy@h:2222"


def test_ssh_quotes_the_remote_command_so_it_splits_back_into_the_same_argv() -> None:
    remote = ["sbatch", "--comment=a b; rm -rf ~", "$(reboot)", "it's", "/jobs/x y/run.sh"]
    argv = ssh(hostname="h").ssh_argv(remote)
    assert shlex.split(argv[-1]) == remote


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", "no"), ("no", "no"), ("TRUE", "yes"), ("accept-new", "accept-new")],
)
def test_ssh_host_key_policies(value: str, expected: str) -> None:
    assert ssh(hostname="h", strict_host_key_checking=value).host_key_policy == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs shell_hostname"),
        ({"hostname": "-oProxyCommand=x"}, "not a valid name"),
        ({"hostname": "h", "username": "a b"}, "not a valid name"),
        ({"hostname": "h", "port": "ssh"}, "shell_port must be an integer"),
        ({"hostname": "h", "port": "0"}, "between 1 and 65535"),
        ({"hostname": "h", "strict_host_key_checking": "maybe"}, "true, false or accept-new"),
        ({"hostname": "h", "password": "x"}, "shell_password"),
    ],
)
def test_ssh_refuses_bad_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SecureShell(options)


def test_ssh_shell_reports_the_remote_command_not_the_ssh_wrapper(tmp_path) -> None:
    # port 1 on localhost refuses at once; the result must name the remote argv
    shell = ssh(
        hostname="127.0.0.1", port="1", known_hosts=str(tmp_path / "kh"), connect_timeout="2"
    )
    result = shell.execute(["squeue", "-h"], timeout=20)
    assert result.returncode == 255
    assert result.argv == ("squeue", "-h")
