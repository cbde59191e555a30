"""Users over a real (SQLite) job store: tokens, identification, plans, revocation."""

from __future__ import annotations

import pytest

from lwr.errors import (
    AuthorizationError,
    InvalidRequestError,
    NotFoundError,
    UserExistsError,
    UserRevokedError,
)
from lwr.persistence.store import JobStore
from lwr.service.plans import Plan, Plans
from lwr.service.store import token_digest
from lwr.service.users import ADMIN, Users


@pytest.fixture
def users(store: JobStore) -> Users:
    return Users(store, Plans(), admin_token="pt")


def test_add_gives_a_random_token_stored_only_as_its_digest(users: Users, store: JobStore) -> None:
    user, token = users.add("alice")
    _, other = users.add("bob")
    assert user.plan == "free" and token.startswith("lwr_") and len(token) > 40 and token != other
    rows = store.db.fetchall("SELECT * FROM service_users")
    assert token not in repr(rows) and token_digest(token) in repr(rows)


def test_identify(users: Users) -> None:
    _, token = users.add("alice")
    assert users.identify("pt") is ADMIN
    caller = users.identify(token)
    assert caller.user is not None and caller.owner == "alice" and not caller.is_admin
    for wrong in (None, "", "nope", token + "x", "PT"):
        with pytest.raises(AuthorizationError):
            users.identify(wrong)


def test_without_a_private_token_the_server_stays_open(store: JobStore) -> None:
    users = Users(store, Plans(), admin_token=None)
    _, token = users.add("alice")
    assert users.identify(None) is ADMIN and users.identify("whatever") is ADMIN
    assert users.identify(token).owner == "alice"  # a user's token still makes it theirs


def test_names_are_checked_and_never_reused(users: Users) -> None:
    users.add("alice")
    with pytest.raises(UserExistsError):
        users.add("alice")
    users.revoke("alice")
    with pytest.raises(UserExistsError):
        users.add("alice")
    with pytest.raises(InvalidRequestError):
        users.add("Alice")
    with pytest.raises(InvalidRequestError, match="unknown plan"):
        users.add("carol", "gold")


def test_revoke_refuses_the_token_from_then_on(users: Users) -> None:
    _, token = users.add("alice")
    revoked = users.revoke("alice")
    assert not revoked.active and revoked.revoked is not None
    assert users.authenticate(token) is None
    with pytest.raises(AuthorizationError):
        users.identify(token)
    with pytest.raises(UserRevokedError, match="already"):
        users.revoke("alice")
    with pytest.raises(NotFoundError):
        users.revoke("nobody")


def test_set_plan_tells_the_listeners(users: Users) -> None:
    heard: list[tuple[str, str, str]] = []
    users.plan_listeners.append(
        lambda user, old, new: heard.append((user.name, old.name, new.name))
    )
    users.plan_listeners.append(lambda *_: 1 / 0)  # a failing listener changes nothing
    users.add("alice")
    assert users.set_plan("alice", "premium").plan == "premium"
    assert heard == [("alice", "free", "premium")]
    assert users.get("alice").plan == "premium"
    with pytest.raises(InvalidRequestError):
        users.set_plan("alice", "gold")
    with pytest.raises(NotFoundError):
        users.set_plan("nobody", "free")


def test_running_limit_and_a_plan_the_config_dropped(store: JobStore) -> None:
    users = Users(store, Plans((Plan("lab", max_running_jobs=3), Plan("free")), "free"))
    users.add("alice", "lab")
    assert users.running_limit("alice") == 3
    assert users.running_limit("nobody") is None
    later = Users(store, Plans((Plan("free", max_running_jobs=1),), "free"))
    assert later.plan_of(later.get("alice")).name == "free"  # "lab" is gone: the default
    assert later.running_limit("alice") == 1
