"""Credentials: where they come from, and that they never reach a log line or a worker."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from lwr.balancer import credentials
from lwr.balancer.drivers.base import Credentials, worker_environment
from lwr.errors import ConfigurationError


def test_flags_win_then_ec2_variables_then_aws_variables() -> None:
    env = {
        "EC2_ACCESS_KEY": "ea",
        "EC2_SECRET_KEY": "es",
        "AWS_ACCESS_KEY_ID": "aa",
        "AWS_SECRET_ACCESS_KEY": "as",
        "AWS_SESSION_TOKEN": "tok",
    }
    assert credentials.resolve("fa", "fs", env, interactive=False) == Credentials("fa", "fs", "tok")
    assert credentials.resolve(None, None, env, interactive=False) == Credentials("ea", "es", "tok")
    aws = {k: v for k, v in env.items() if k.startswith("AWS")}
    assert credentials.resolve(None, None, aws, interactive=False) == Credentials("aa", "as", "tok")


def test_missing_keys_leave_boto3_its_chain_unless_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert credentials.resolve(None, None, {}, interactive=False) is None
    monkeypatch.setattr("builtins.input", lambda prompt: "typed-access")
    monkeypatch.setattr(credentials.getpass, "getpass", lambda prompt: "typed-secret")
    typed = credentials.resolve(None, None, {}, interactive=True)
    assert typed == Credentials("typed-access", "typed-secret")


def test_half_a_key_pair_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs its secret key"):
        credentials.resolve("a", None, {}, interactive=False)


def test_repr_never_shows_them() -> None:
    assert "s3cret" not in repr(Credentials("AKIA", "s3cret"))


def test_the_log_filter_masks_them(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("lwr.test.secrets")
    caplog.handler.addFilter(credentials.SecretFilter(["AKIAX", "s3cret"]))
    logger.warning("request failed for %s with %s", "AKIAX", "s3cret")
    assert "AKIAX" not in caplog.text and "s3cret" not in caplog.text and "***" in caplog.text


def test_workers_never_inherit_cloud_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("EC2_SECRET_KEY", "y")
    env = worker_environment()
    assert "AWS_SECRET_ACCESS_KEY" not in env and "EC2_SECRET_KEY" not in env and "PATH" in env


def test_keys_travel_through_a_pipe_not_the_command_line() -> None:
    """What ``reexec_without`` hands over, ``read_fd`` gets, in a fresh process."""
    reader, writer = os.pipe()
    os.write(writer, b'{"access_key": "A", "secret_key": "S"}')
    os.close(writer)
    code = (
        "import sys; from lwr.balancer.credentials import read_fd; print(read_fd(int(sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(reader)],
        pass_fds=[reader],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.close(reader)
    assert out.strip() == "('A', 'S')"
