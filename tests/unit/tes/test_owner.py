"""The TES ownership rule: callers are named by a digest of their token."""

from __future__ import annotations

from webob import Request

from lwr.tes.owner import ANONYMOUS, caller, may_see


def test_caller_is_a_digest_of_the_token_never_the_token() -> None:
    header = Request.blank("/", headers={"Authorization": "Bearer secret-a"})
    query = Request.blank("/?private_token=secret-a")
    other = Request.blank("/", headers={"Authorization": "Bearer secret-b"})
    assert caller(header, "secret-a") == caller(query, "secret-a")
    assert caller(header, "secret-a") != caller(other, "secret-a")
    assert "secret" not in caller(header, "secret-a")
    assert caller(header, None) == ANONYMOUS


def test_only_the_owner_sees_a_task() -> None:
    assert may_see("token:abc", "token:abc")
    assert not may_see("token:abc", "token:abd")
    assert not may_see(None, ANONYMOUS)
