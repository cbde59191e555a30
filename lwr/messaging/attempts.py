"""Whether a setup message for a job whose last attempt is final starts a new attempt.

Galaxy resubmits a failed job (its job configuration's ``resubmit`` rules) under the same job
id: after LWR announced ``failed`` or ``lost``, Galaxy publishes a new setup message for that id.
Over the message queue nothing says "this is attempt 2", and the job's record is still there
(Galaxy's message-queue client never sends ``clean``; the record lives until
``finished_job_retention``). But the same queue also brings setups that must *not* run again:

* the broker's redelivery of the setup that started the attempt (LWR died after the job was
  durable, before the ack): the broker marks it ``redelivered``;
* the client's resend of a setup it saw no acknowledgement for: same ``acknowledge_uuid``.

Galaxy resubmits only after a failure (``failed``, ``lost``, or its own error finishing a job),
never a job it killed: a ``cancelled`` attempt is not restarted, which also keeps a job killed
before its setup came from running on a repeated setup. Every attempt started from a message
remembers that message's identity (its ``acknowledge_uuid``, else a digest of its body) in the
job's launch record, under :data:`ORIGIN`, and a setup for a finished job starts a new attempt
unless it is the message that started the finished one. A body without ``acknowledge_uuid``
may be byte-identical to the previous attempt's (Galaxy builds both from the same job); then the
broker's ``redelivered`` flag decides: a fresh publish is a resubmission, a redelivery is the
original again.

Galaxy kills a job before it resubmits it, on the ``kill`` queue, which the broker does not
order with ``setup``. Galaxy publishes the resubmission's setup only after its job handler took
the job up again, so LWR normally has the kill (a no-op on the finished attempt) long before; a
kill consumed after that setup — both waiting in a backlog, say — carries no attempt and cancels
the new attempt, which Galaxy then sees ``cancelled``.

One case stays ambiguous and is resolved towards "never run twice": a redelivered setup,
without ``acknowledge_uuid``, identical to the one that started the finished attempt — the
original after a crash, or a resubmission identical to it whose consumer died before making it
durable (a window of milliseconds). Galaxy's ``amqp_acknowledge`` removes the ambiguity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from lwr.messaging.exchange import ACK_QUEUE, ACK_SUBMIT_QUEUE, ACK_UUID, FORCE_NOACK

#: the key of a job's stored launch naming the setup message that started the attempt
ORIGIN = "setup_message"

_ACK_KEYS = frozenset({ACK_UUID, ACK_QUEUE, ACK_SUBMIT_QUEUE, FORCE_NOACK})


def identity(body: Mapping[str, Any]) -> str:
    """What names one published setup message across redeliveries and the client's resends."""
    uuid = body.get(ACK_UUID)
    if isinstance(uuid, str) and uuid:
        return f"uuid:{uuid}"
    rest = {key: value for key, value in body.items() if key not in _ACK_KEYS}
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()
    return f"sha256:{digest}"


def starts_new_attempt(message: str, redelivered: bool, started_by: str | None) -> bool:
    """Whether setup ``message`` (an :func:`identity`) starts a new attempt of a finished job.

    ``started_by`` is the identity that started the finished attempt (None when it was not
    started by a message LWR remembers: set up over HTTP, or by an older LWR).
    """
    if message == started_by:
        # the same message again: a redelivery or a resend, unless a plain body was published
        # anew (a resubmission can be byte-identical to the first attempt's setup)
        return not redelivered and not message.startswith("uuid:")
    if started_by is None:
        return not redelivered  # nothing to compare with: a redelivery may be the original
    return True  # a message that never started an attempt here
