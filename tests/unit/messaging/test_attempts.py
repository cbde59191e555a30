"""Which setup messages for a finished job start a new attempt (Galaxy's resubmissions)."""

from __future__ import annotations

from lwr.messaging.attempts import identity, starts_new_attempt

SETUP = {"job_id": "7", "command_line": "true", "setup_params": {"tool_id": "cat1"}}
ACKED = {**SETUP, "acknowledge_uuid": "u-1", "acknowledge_queue": "setup_ack"}


def test_a_resend_and_the_original_have_one_identity() -> None:
    assert identity(ACKED) == "uuid:u-1"
    assert identity({**ACKED, "force_noack": True}) == identity(ACKED)
    assert identity(SETUP) == identity(dict(reversed(list(SETUP.items()))))
    assert identity(SETUP) != identity({**SETUP, "command_line": "false"})


def test_the_message_that_started_the_attempt_never_starts_another() -> None:
    acked = identity(ACKED)
    assert not starts_new_attempt(acked, redelivered=True, started_by=acked)
    assert not starts_new_attempt(acked, redelivered=False, started_by=acked)  # a resend
    plain = identity(SETUP)
    assert not starts_new_attempt(plain, redelivered=True, started_by=plain)


def test_a_new_message_starts_a_new_attempt() -> None:
    old = identity(ACKED)
    new = identity({**SETUP, "acknowledge_uuid": "u-2", "acknowledge_queue": "setup_ack"})
    assert starts_new_attempt(new, redelivered=False, started_by=old)
    assert starts_new_attempt(new, redelivered=True, started_by=old)  # died before acting on it
    plain = identity(SETUP)
    assert starts_new_attempt(plain, redelivered=False, started_by=plain)  # published anew
    assert starts_new_attempt(identity({**SETUP, "env": []}), redelivered=True, started_by=plain)


def test_without_a_remembered_origin_only_a_fresh_publish_starts_one() -> None:
    assert starts_new_attempt(identity(SETUP), redelivered=False, started_by=None)
    assert not starts_new_attempt(identity(SETUP), redelivered=True, started_by=None)
