"""UserAuth: Pulsar's order of plugins, and what a refusal says."""

from __future__ import annotations

from typing import Any

import pytest

from lwr.auth.base import Authentication, AuthRequest, Identity
from lwr.auth.checker import UserAuth, token_endpoint_of
from lwr.auth.settings import parse_user_auth
from lwr.errors import UserAuthError


class Fixed(Authentication):
    """Names a fixed user, says nothing (None), or refuses; records the requests it saw."""

    def __init__(self, outcome: str | None) -> None:
        super().__init__("fixed", {})
        self.outcome = outcome
        self.seen: list[AuthRequest] = []

    def authenticate(self, request: AuthRequest) -> Identity | None:
        self.seen.append(request)
        if self.outcome == "refuse":
            raise UserAuthError("refused by the fake", "fake")
        return Identity(self.outcome, "fixed") if self.outcome else None


def user_auth(config: dict[str, Any], *authentication: Fixed) -> UserAuth:
    parsed = parse_user_auth(config)
    assert parsed is not None
    checker = UserAuth(parsed)
    if authentication:
        checker.authentication = list(authentication)
    return checker


USERLIST = {
    "authentication": [{"type": "allow_all"}],
    "authorization": [{"type": "userlist", "userlist_allowed_users": ["alice"]}],
}


def test_the_first_plugin_that_names_a_user_decides() -> None:
    first, second = Fixed(None), Fixed("alice")
    identity = user_auth(USERLIST, first, second).check("m", "j", {})
    assert identity is not None and identity.username == "alice"
    assert len(first.seen) == len(second.seen) == 1


def test_a_refusal_stops_the_search() -> None:
    """So an allow_all after oidc is no back door (as in Pulsar, where oidc raises)."""
    after = Fixed("alice")
    with pytest.raises(UserAuthError, match="refused by the fake"):
        user_auth(USERLIST, Fixed("refuse"), after).check("m", "j", {})
    assert after.seen == []


def test_nobody_named_is_a_refusal() -> None:
    with pytest.raises(UserAuthError) as caught:
        user_auth(USERLIST, Fixed(None)).check("m", "j", {})
    assert caught.value.reason == "unknown_user"


def test_userlist_refuses_other_users_by_name() -> None:
    with pytest.raises(UserAuthError) as caught:
        user_auth(USERLIST, Fixed("mallory")).check("m", "j", {})
    assert caught.value.reason == "user_not_allowed"
    assert "'mallory' is not allowed" in caught.value.message
    assert caught.value.status == 403


def test_allow_all_authentication_is_anonymous() -> None:
    """Pulsar's allow_all names everyone ``anonymous``; a userlist can name it."""
    config = {
        "authentication": [{"type": "allow_all"}],
        "authorization": [{"type": "userlist", "userlist_allowed_users": ["anonymous"]}],
    }
    identity = user_auth(config).check("m", "j", {})
    assert identity is not None and identity.username == "anonymous"
    refused = {**config, "authorization": [{"type": "userlist", "userlist_allowed_users": []}]}
    with pytest.raises(UserAuthError):
        user_auth(refused).check("m", "j", {})


def test_any_authorization_plugin_may_allow() -> None:
    config = {**USERLIST, "authorization": [*USERLIST["authorization"], {"type": "allow_all"}]}
    assert user_auth(config, Fixed("mallory")).check("m", "j", {}) is not None


def test_the_token_endpoint_reaches_the_plugins_in_both_shapes() -> None:
    plugin = Fixed("alice")
    checker = user_auth(USERLIST, plugin)
    checker.check("m", "j1", {"token_endpoint": {"token_endpoint": "http://g/t?job_key=1"}})
    checker.check("m", "j2", {"token_endpoint": "http://g/t?job_key=2"})
    assert [r.token_endpoint for r in plugin.seen] == [
        "http://g/t?job_key=1",
        "http://g/t?job_key=2",
    ]
    assert [(r.manager, r.job_id) for r in plugin.seen] == [("m", "j1"), ("m", "j2")]


@pytest.mark.parametrize("value", [None, {}, {"token_endpoint": None}, "", 3])
def test_no_usable_token_endpoint(value: Any) -> None:
    assert token_endpoint_of({"token_endpoint": value}) is None
