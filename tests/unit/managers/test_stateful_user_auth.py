"""StatefulManager with user_auth: judged once per job, before it is queued; refusals recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.auth.base import Authentication, AuthRequest, Identity
from lwr.auth.checker import UserAuth
from lwr.auth.settings import parse_user_auth
from lwr.errors import IdentityServiceError, UnknownJobError, UserAuthError
from lwr.managers.base import JobState
from lwr.managers.local import UnqueuedManager
from lwr.managers.stateful import StatefulManager
from lwr.persistence.store import JobRecord, JobStore


class ByJob(Authentication):
    """Names the user the test assigned to each job id; counts how often it is asked."""

    def __init__(self) -> None:
        super().__init__("by_job", {})
        self.users: dict[str, str] = {}
        self.calls: list[str] = []
        self.down = False

    def authenticate(self, request: AuthRequest) -> Identity:
        self.calls.append(request.job_id)
        if self.down:
            raise IdentityServiceError("the JWKS at http://idp/jwks could not be fetched")
        return Identity(self.users.get(request.job_id, "mallory"), "by_job")


@pytest.fixture
def plugin() -> ByJob:
    return ByJob()


@pytest.fixture
def manager(tmp_path: Path, plugin: ByJob) -> Iterator[StatefulManager]:
    config = parse_user_auth(
        {
            "authentication": [{"type": "allow_all"}],
            "authorization": [{"type": "userlist", "userlist_allowed_users": ["alice"]}],
        }
    )
    assert config is not None
    user_auth = UserAuth(config)
    user_auth.authentication = [plugin]
    store = JobStore(tmp_path / "state")
    manager = StatefulManager(
        UnqueuedManager("local", {}), store, tmp_path / "staging", user_auth=user_auth
    )
    manager.start()
    yield manager
    manager.stop()
    store.close()


def test_a_refused_job_is_recorded_failed_and_heard_by_listeners(
    manager: StatefulManager, plugin: ByJob
) -> None:
    heard: list[JobRecord] = []
    manager.listeners.append(lambda _m, record: heard.append(record))
    manager.setup("j1")
    with pytest.raises(UserAuthError) as caught:
        manager.submit("j1", {"command_line": "true"})
    assert caught.value.reason == "user_not_allowed"
    record = manager.record("j1")
    assert record.state is JobState.FAILED
    assert record.reason == "user_auth: user 'mallory' is not allowed to run jobs here"
    assert [r.state for r in heard] == [JobState.FAILED]
    status = manager.status("j1")
    assert status["status"] == "failed" and "not allowed" in status["stderr"]


def test_a_service_failure_fails_the_job_too(manager: StatefulManager, plugin: ByJob) -> None:
    plugin.down = True
    manager.setup("j2")
    with pytest.raises(IdentityServiceError):
        manager.submit("j2", {"command_line": "true"})
    assert manager.record("j2").state is JobState.FAILED


def test_an_accepted_job_is_not_judged_again(manager: StatefulManager, plugin: ByJob) -> None:
    plugin.users["j3"] = "alice"
    manager.setup("j3")
    first = manager.submit("j3", {"command_line": "true"})
    assert first.launch is not None
    assert first.launch["user_auth"] == {"username": "alice", "method": "by_job"}
    plugin.users["j3"] = "mallory"  # say the token expired since: a resent submit is ignored
    manager.submit("j3", {"command_line": "true"})
    assert plugin.calls == ["j3"]


def test_a_setup_message_is_judged_before_the_job_exists(
    manager: StatefulManager, plugin: ByJob
) -> None:
    """The MQ path: no record yet; nothing is created for a refused job."""
    with pytest.raises(UserAuthError):
        manager.submit("j4", {"command_line": "true", "setup_params": {}})
    assert manager.find("j4") is None


def test_an_unknown_job_is_404_without_asking(manager: StatefulManager, plugin: ByJob) -> None:
    with pytest.raises(UnknownJobError):
        manager.submit("nope", {"command_line": "true"})
    assert plugin.calls == []
