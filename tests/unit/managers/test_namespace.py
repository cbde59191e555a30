"""Per-user job namespaces: stored ids, directories, and names that must be refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.errors import ConfigurationError, InvalidRequestError
from lwr.managers import namespace


def test_admin_ids_are_stored_as_sent_and_laid_out_as_pulsar() -> None:
    assert namespace.scoped(None, "42") == "42"
    assert namespace.split("42") == (None, "42")
    assert namespace.job_path(Path("/s"), "42") == Path("/s/42")


def test_user_ids_are_scoped_and_live_under_users() -> None:
    stored = namespace.scoped("alice", "42")
    assert stored == "alice~42" != namespace.scoped("bob", "42")
    assert namespace.split(stored) == ("alice", "42")
    assert namespace.owner_of(stored) == "alice" and namespace.client_id(stored) == "42"
    assert namespace.job_path(Path("/s"), stored) == Path("/s/.users/alice/42")


@pytest.mark.parametrize("job_id", ["..", "a/b", ".users", "~x", "a~b", ""])
def test_a_client_cannot_name_another_namespace(job_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        namespace.scoped("alice", job_id)
    with pytest.raises(InvalidRequestError):
        namespace.scoped(None, job_id)


@pytest.mark.parametrize("name", ["Alice", "a b", "a~b", "../x", "", "1abc", "a" * 33, "alice\n"])
def test_bad_user_names(name: str) -> None:
    with pytest.raises(InvalidRequestError):
        namespace.check_user_name(name)


@pytest.mark.parametrize("name", [".users", ".x", "a~b", "a/b"])
def test_manager_names_that_could_share_the_users_directory_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError):
        namespace.check_manager_name(name)
    namespace.check_manager_name("_default_")


def test_user_directories(tmp_path: Path) -> None:
    assert namespace.user_directories(tmp_path) == []
    (tmp_path / ".users" / "bob").mkdir(parents=True)
    (tmp_path / ".users" / "alice").mkdir()
    assert [p.name for p in namespace.user_directories(tmp_path)] == ["alice", "bob"]
