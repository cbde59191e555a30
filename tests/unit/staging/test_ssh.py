"""The ssh movers' pure parts: argv lists, the key file, retries by what the program said."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lwr.errors import StagingError
from lwr.staging.movers import ClientFile, StagingSettings
from lwr.staging.ssh import RsyncMover, ScpMover, SshTarget, private_key, run_with_retries
from lwr.staging.transfer import RetryPolicy

SETTINGS = StagingSettings(
    policy=RetryPolicy(retries=2, delay=0.01, timeout=12), ssh_known_hosts=Path("/kh file")
)


def target(**params: object) -> SshTarget:
    base = {"ssh_host": "galaxy.example.org", "ssh_user": "gx", "ssh_port": "2200", "ssh_key": "K"}
    return SshTarget.of(ClientFile("/data/x", "input", {**base, **params}), "remote_scp_transfer")


def test_scp_argv_is_a_list_with_the_host_key_policy_and_no_shell() -> None:
    argv = ScpMover(SETTINGS)._copy_argv(target(), "/k", "gx@h:/a b;rm -rf ~", "/t")
    assert argv[:2] == ["scp", "-B"]
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/kh file" in argv
    assert argv[argv.index("-P") + 1] == "2200" and argv[argv.index("-i") + 1] == "/k"
    assert argv[-3:] == ["--", "gx@h:/a b;rm -rf ~", "/t"]  # one word each, after "--"


def test_rsync_quotes_its_remote_shell_and_protects_remote_paths() -> None:
    argv = RsyncMover(SETTINGS)._copy_argv(target(), "/k", "/s", "gx@galaxy.example.org:/d")
    assert "--protect-args" in argv and "--timeout=12" in argv
    shell = argv[argv.index("-e") + 1]
    assert shell.startswith("ssh -T ") and "'UserKnownHostsFile=/kh file'" in shell
    assert "-p 2200 -l gx" in shell


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"ssh_host": None}, "needs ssh_host"),
        ({"ssh_key": "__UNSET__"}, "needs ssh_key"),
        ({"ssh_host": "-oProxyCommand=evil"}, "not a valid name"),
        ({"ssh_user": "a b"}, "not a valid name"),
        ({"ssh_host": "h:/etc"}, "not a valid name"),
        ({"ssh_host": "me@h"}, "not a valid name"),
        ({"ssh_host": ""}, "needs ssh_host"),
        ({"ssh_port": "70000"}, "not a port number"),
        ({"ssh_port": "ssh"}, "not a port number"),
    ],
)
def test_bad_ssh_settings_are_refused(params: dict[str, object], complaint: str) -> None:
    with pytest.raises(StagingError, match=complaint):
        target(**params)


def test_the_key_file_is_private_and_removed() -> None:
    with private_key("-----BEGIN KEY-----\r\nabc\r\n-----END KEY-----") as path:
        mode = os.stat(path).st_mode
        assert stat.S_IMODE(mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert Path(path).read_text() == "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"
    assert not os.path.exists(os.path.dirname(path))


def _sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def test_a_refusal_is_not_retried_and_keeps_the_message() -> None:
    slept: list[float] = []
    with pytest.raises(StagingError) as caught:
        run_with_retries(
            _sh("echo 'me@h: Permission denied (publickey).' >&2; exit 255"),
            iter([1.0, 2.0]),
            "scp of /x",
            sleep=slept.append,
        )
    assert caught.value.message == (
        "scp of /x failed: sh exited with code 255: me@h: Permission denied (publickey)."
    )
    assert slept == []


def test_a_connection_failure_is_retried_by_the_policy(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = (
        f"echo x >> {counter}; echo 'connect to host h port 22: Connection refused' >&2; exit 255"
    )
    slept: list[float] = []
    with pytest.raises(StagingError, match=r"after 3 attempt\(s\).*Connection refused"):
        run_with_retries(_sh(script), SETTINGS.policy.delays(), "rsync", sleep=slept.append)
    assert len(counter.read_text().splitlines()) == 3 and slept == [0.01, 0.02]


def test_success_after_a_transient_failure(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    script = f"[ -e {flag} ] && exit 0; touch {flag}; echo 'Connection reset' >&2; exit 12"
    run_with_retries(_sh(script), iter([0.0]), "rsync", sleep=lambda _: None)


def test_ipv6_hosts_are_bracketed_in_remote_names() -> None:
    assert target(ssh_host="::1").remote("/a") == "gx@[::1]:/a"
    assert target(ssh_host="127.0.0.1", ssh_user=None).remote("/a") == "127.0.0.1:/a"
