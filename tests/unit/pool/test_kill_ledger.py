"""The kill ledger's bookkeeping without a broker: confirms, the catch-up mark, the window.

The broker side (a real stream, workers started after the kill) is tested in
tests/integration/amqp/test_pool_late_kill.py.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from lwr.errors import KillLedgerUnavailable
from lwr.persistence.outbox import EARLY_KILL_MEMORY
from lwr.pool import protocol
from lwr.pool.kill_ledger import KillLedger, ledger_name, stream_arguments


class Writer:
    """The writer channel: publishes recorded, nothing sent."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def prepare_message(self, body: str, **_options: Any) -> str:
        return body

    def basic_publish(self, message: str, exchange: str, routing_key: str) -> None:
        assert exchange == "" and routing_key == "pulsar_m__lwr_pool_kills"
        self.published.append({"body": message})


def _ledger() -> tuple[KillLedger, list[list[str]]]:
    read: list[list[str]] = []
    ledger = KillLedger("pulsar_m_", "w1", lambda es: read.append([str(e.job_id) for e in es]))
    ledger._writer = Writer()
    return ledger, read


def _entry(ledger: KillLedger, body: Any) -> list[str]:
    acks: list[str] = []
    ledger._on_entry(body, SimpleNamespace(ack=lambda: acks.append("ack")))
    return acks


def test_the_ledger_is_a_stream_kept_for_the_kill_memory_window() -> None:
    assert ledger_name("pulsar_m_") == "pulsar_m__lwr_pool_kills"
    arguments = stream_arguments()
    assert arguments["x-queue-type"] == "stream"
    assert arguments["x-max-age"] == f"{int(EARLY_KILL_MEMORY)}s"


def test_each_kill_is_passed_on_once_its_own_confirm_came() -> None:
    ledger, _ = _ledger()
    done: list[str] = []
    ledger._write(protocol.LedgerEntry("mark", "w1", 1.0, token="t"))  # number 1, no callback
    for job in ("a", "b", "c", "d"):  # numbers 2..5
        ledger.record(job, then=lambda j=job: done.append(j))  # type: ignore[misc]
    ledger._on_confirm(1, False)
    ledger._on_confirm(3, True)  # 2 and 3 at once
    assert done == ["a", "b"]
    ledger._on_confirm(5, False)  # one at a time, out of order
    assert done == ["a", "b", "d"]
    ledger._on_confirm(4, False)
    assert done == ["a", "b", "d", "c"] and ledger._confirming == {}


def test_a_refused_entry_fails_the_session_and_its_kill_is_not_passed_on() -> None:
    ledger, _ = _ledger()
    done: list[str] = []
    ledger.record("a", then=lambda: done.append("a"))
    with pytest.raises(KillLedgerUnavailable):
        ledger._on_refusal(1, False)
    assert done == []


def test_the_catch_up_batch_ends_at_the_workers_own_mark_then_kills_come_one_by_one() -> None:
    ledger, read = _ledger()
    ledger._token, ledger._backlog = "mine", []
    now = time.time()
    kill = protocol.LedgerEntry("kill", "w2", now, job_id="k1").to_body()
    old = protocol.LedgerEntry("kill", "w2", now - EARLY_KILL_MEMORY - 60, job_id="old")
    assert _entry(ledger, kill) == ["ack"]
    assert _entry(ledger, old.to_body()) == ["ack"]  # older than the window: forgotten
    assert _entry(ledger, {"junk": True}) == ["ack"]  # not ours: acked and ignored
    _entry(ledger, protocol.LedgerEntry("mark", "w3", now, token="theirs").to_body())
    assert ledger._token == "mine" and read == []
    _entry(ledger, protocol.LedgerEntry("mark", "w1", now, token="mine").to_body())
    assert ledger._token is None
    assert ledger._backlog is not None and [e.job_id for e in ledger._backlog] == ["k1"]
    ledger._backlog = None  # what catch_up does once the mark is read
    _entry(ledger, protocol.LedgerEntry("kill", "w2", now, job_id="k2").to_body())
    assert read == [["k2"]]
