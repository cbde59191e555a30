"""What pool workers and the balancer say to each other over the broker.

Workers and the balancer may run on different hosts with nothing shared but the broker, so the
broker carries both directions: each worker publishes a load report every few seconds, and the
balancer tells one worker to drain. Both go through one topic exchange, ``lwr_pool``, that is not
durable (a report nobody hears is worth nothing a few seconds later) and is separate from the
``pulsar`` exchange Galaxy's client declares, so nothing here can disturb that contract. Routing
keys start with the manager's queue prefix (``pulsar_`` for the default manager), so several pools
on one broker never hear each other:

* ``<prefix>.load``: a :class:`LoadReport`, from every worker;
* ``<prefix>.control.<worker_id>``: a :class:`DrainCommand`, to one worker;
* ``<prefix>.job.kill`` and ``<prefix>.job.status``: a :class:`JobRequest`, from the worker the
  broker handed Galaxy's kill or status message to, to every worker of the pool (only the one
  holding the job acts; see :mod:`lwr.pool.worker`). The balancer may ignore these.

Kills are also parked in the pool's *kill ledger*, a durable RabbitMQ stream every worker reads
from the start of the memory window (:mod:`lwr.pool.kill_ledger`); its records are
:class:`LedgerEntry` bodies.

This module is pure (no kombu): encoding, decoding and validation, so both sides share one
definition and unit tests need no broker.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from lwr.errors import InvalidRequestError

POOL_EXCHANGE = "lwr_pool"
POOL_EXCHANGE_TYPE = "topic"
#: the report format's version; a receiver ignores reports of a version it does not know
PROTOCOL_VERSION = 1
#: a worker id is one routing-key word: no dots, no wildcards, bounded
WORKER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: what a :class:`JobRequest` may ask of the worker holding a job
JOB_ACTIONS = ("kill", "status")


def load_key(prefix: str) -> str:
    """Routing key of the load reports of the pool whose queues start with ``prefix``."""
    return f"{prefix}.load"


def control_key(prefix: str, worker_id: str) -> str:
    """Routing key of the commands to one worker."""
    return f"{prefix}.control.{check_worker_id(worker_id)}"


def job_key(prefix: str, action: str) -> str:
    """Routing key of a kill or status request re-broadcast to every worker of the pool."""
    if action not in JOB_ACTIONS:
        raise InvalidRequestError(f"unknown job action {action!r}")
    return f"{prefix}.job.{action}"


def job_pattern(prefix: str) -> str:
    """The binding that hears every re-broadcast job request of the pool."""
    return f"{prefix}.job.*"


def check_worker_id(worker_id: str) -> str:
    """``worker_id`` if it can be a routing-key word, else an InvalidRequestError."""
    if not isinstance(worker_id, str) or not WORKER_ID.match(worker_id):
        raise InvalidRequestError(f"worker id must match {WORKER_ID.pattern}: {worker_id!r}")
    return worker_id


@dataclass(frozen=True)
class LoadReport:
    """One worker's state, as the balancer sizes the pool from it.

    ``jobs_received_total`` only grows for the life of the worker process: the balancer turns
    the sum of its differences into the arrival rate. ``gone`` is set on the last report a worker
    sends before it exits, so the balancer forgets it without waiting for the report to age out.
    """

    worker_id: str
    manager: str
    host: str
    pid: int
    slots: int
    jobs_held: int
    draining: bool
    jobs_received_total: int
    jobs_finished_total: int
    sent_at: float
    gone: bool = False
    #: where the worker's HTTP face (``/metrics``) is, when it has one
    endpoint: str | None = None
    version: int = PROTOCOL_VERSION

    @property
    def idle(self) -> bool:
        return self.jobs_held == 0

    def to_body(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_body(cls, body: Any) -> LoadReport:
        """Validate a received report; a malformed one is an InvalidRequestError."""
        if not isinstance(body, dict):
            raise InvalidRequestError("a load report must be a JSON object")
        report = _build(cls, body, "load report")
        report._check()
        return report

    def _check(self) -> None:
        check_worker_id(self.worker_id)
        counts = (self.pid, self.slots, self.jobs_held, self.jobs_received_total)
        if not all(_count(value) for value in (*counts, self.jobs_finished_total)):
            raise InvalidRequestError("load report counts must be non-negative integers")
        if not all(isinstance(flag, bool) for flag in (self.draining, self.gone)):
            raise InvalidRequestError("load report flags must be booleans")
        if not isinstance(self.sent_at, (int, float)) or not math.isfinite(self.sent_at):
            raise InvalidRequestError("load report sent_at must be a finite number")
        for text in (self.manager, self.host):
            if not isinstance(text, str):
                raise InvalidRequestError("load report manager and host must be strings")


@dataclass(frozen=True)
class DrainCommand:
    """Tells one worker to take no new job, finish what it holds and exit.

    ``timeout`` (seconds) bounds the wait; after it the worker hands its unfinished jobs back to
    the pool and exits. ``None`` means the worker's own configured drain timeout.
    """

    worker_id: str
    timeout: float | None = None
    command: str = "drain"
    version: int = PROTOCOL_VERSION

    def to_body(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_body(cls, body: Any) -> DrainCommand:
        if not isinstance(body, dict) or body.get("command") != "drain":
            raise InvalidRequestError("unknown pool command")
        command = _build(cls, body, "drain command")
        check_worker_id(command.worker_id)
        timeout = command.timeout
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout < 0
        ):
            raise InvalidRequestError("drain timeout must be a non-negative number or null")
        return command


@dataclass(frozen=True)
class JobRequest:
    """Galaxy's kill or status request for ``job_id``, passed on to every worker of the pool.

    Galaxy's kill and status queues have competing consumers like the setup queue, so the broker
    may hand the message to a worker that does not hold the job; that worker re-broadcasts it
    here. ``origin`` is the worker that did, for the logs.
    """

    job_id: str
    action: str
    origin: str
    version: int = PROTOCOL_VERSION

    def to_body(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_body(cls, body: Any) -> JobRequest:
        if not isinstance(body, dict):
            raise InvalidRequestError("a job request must be a JSON object")
        request = _build(cls, body, "job request")
        if request.action not in JOB_ACTIONS:
            raise InvalidRequestError(f"unknown job action {request.action!r}")
        if not isinstance(request.job_id, str) or not isinstance(request.origin, str):
            raise InvalidRequestError("job request job_id and origin must be strings")
        return request


#: what a :class:`LedgerEntry` records
LEDGER_KINDS = ("kill", "mark", "claim", "done")


@dataclass(frozen=True)
class LedgerEntry:
    """One record of the kill ledger (see :mod:`lwr.pool.kill_ledger`).

    ``kill``: Galaxy's kill of ``job_id``, taken from the ``kill`` queue by worker ``origin`` at
    ``at`` (epoch seconds: the memory window runs from the kill, not from its reading).
    ``mark``: a worker's catch-up mark, ``token`` unique per reading: a worker that has read its
    own mark has read every kill recorded before it.
    ``claim``: worker ``origin`` took a setup of ``job_id`` carrying Galaxy's ``uuid``; ``token``
    unique per claim (the first claim of a uuid in the stream wins: :mod:`lwr.pool.resends`).
    ``done``: the final status of the job started under ``uuid`` was committed.
    ``uuid`` is left out of the body when None, so that a worker of an older release still
    reads this release's kills and marks.
    """

    kind: str
    origin: str
    at: float
    job_id: str | None = None
    token: str | None = None
    version: int = PROTOCOL_VERSION
    uuid: str | None = None

    def to_body(self) -> dict[str, Any]:
        body = asdict(self)
        if body["uuid"] is None:
            del body["uuid"]
        return body

    @classmethod
    def from_body(cls, body: Any) -> LedgerEntry:
        if not isinstance(body, dict):
            raise InvalidRequestError("a ledger entry must be a JSON object")
        entry = _build(cls, body, "ledger entry")
        if entry.kind not in LEDGER_KINDS:
            raise InvalidRequestError(f"unknown ledger entry kind {entry.kind!r}")
        if not isinstance(entry.origin, str):
            raise InvalidRequestError("ledger entry origin must be a string")
        at = entry.at
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
            raise InvalidRequestError("ledger entry at must be a finite number")
        needs = {"kill": ("job_id",), "mark": ("token",), "claim": ("job_id", "token", "uuid")}
        for what in needs.get(entry.kind, ("uuid",)):
            needed = getattr(entry, what)
            if not isinstance(needed, str) or not needed:
                raise InvalidRequestError(f"a {entry.kind} ledger entry needs a {what}")
        return entry


_Message = TypeVar("_Message")


def _build(cls: type[_Message], body: dict[str, Any], what: str) -> _Message:
    """``cls(**body)`` for a body of this protocol version; anything else an InvalidRequestError.

    One place for the step every message shares, so the version rule cannot drift between them.
    """
    if body.get("version") != PROTOCOL_VERSION:
        raise InvalidRequestError(f"unsupported {what} version {body.get('version')!r}")
    try:
        return cls(**body)
    except TypeError as exc:
        raise InvalidRequestError(f"malformed {what}: {exc}") from None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
