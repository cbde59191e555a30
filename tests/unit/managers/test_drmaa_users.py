"""User policy of queued_external_drmaa and the argument checks of the root chown helper."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from lwr.errors import AuthorizationError, ConfigurationError, InvalidRequestError
from lwr.managers.users import UserPolicy
from lwr.scripts.chown_working_directory import check_target, chown_tree, main

ROOT = pwd.getpwuid(0).pw_name
SYSTEM = pwd.getpwnam("daemon").pw_name


def test_policy_refuses_nonsense_unknown_root_and_system_users() -> None:
    policy = UserPolicy.from_options("", "false", "1000")
    for name in ("", "-rf", "a b", "x" * 40, "Root", "../etc"):
        with pytest.raises(InvalidRequestError):
            policy.check(name)
    with pytest.raises(InvalidRequestError, match="no such user"):
        policy.check("no-such-user-here")
    with pytest.raises(AuthorizationError, match="uid 0"):
        policy.check(ROOT)
    with pytest.raises(AuthorizationError, match="uid"):
        policy.check(SYSTEM)


def test_policy_allow_list_and_root_opt_in() -> None:
    assert UserPolicy.from_options("", "true", "1000").check(ROOT).pw_uid == 0
    with pytest.raises(AuthorizationError, match="allowed_users"):
        UserPolicy.from_options("alice, bob", "true", "1000").check(ROOT)


def test_policy_options_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="allow_root"):
        UserPolicy.from_options("", "maybe", "1000")
    with pytest.raises(ConfigurationError, match="min_uid"):
        UserPolicy.from_options("", "false", "lots")
    with pytest.raises(ConfigurationError, match="allowed_users"):
        UserPolicy.from_options("ok, Not Ok", "false", "1000")


def test_chown_checks_refuse_symlinks_files_and_foreign_parents(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    job = tmp_path / "job"
    job.mkdir()
    (tmp_path / "link").symlink_to(job)
    (tmp_path / "file").write_text("x")
    assert check_target(me, str(job), None).pw_name == me
    with pytest.raises(ValueError, match="symlinks"):
        check_target(me, str(tmp_path / "link"), None)
    with pytest.raises(ValueError, match="symlinks"):
        check_target(me, "relative/path", None)
    with pytest.raises(ValueError, match="job directory"):
        check_target(me, str(tmp_path / "file"), None)
    with pytest.raises(ValueError, match="root"):
        check_target(ROOT, str(job), 4242)
    someone_else = os.getuid() + 4242
    with pytest.raises(ValueError, match="parent"):
        check_target(SYSTEM, str(job), someone_else)


def test_chown_tree_walks_without_following_links(tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "sub").mkdir(parents=True)
    (job / "sub" / "f").write_text("x")
    (job / "escape").symlink_to("/etc")
    assert chown_tree(str(job), os.getuid(), os.getgid()) == 4


def test_chown_main_reports_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["only-one"]) == 2
    assert main(["no-such-user-here", str(tmp_path)]) == 1
    assert "no such user" in capsys.readouterr().err
