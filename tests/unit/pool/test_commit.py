"""A failed commit of a final status names its job in the log (the one case the lease cannot
decide, see docs/elastic_workers.md); an update that is not final fails quietly as before."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from lwr.pool.leases import LeaseTable
from lwr.pool.worker import PoolConsumer


class BrokenChannel:
    """A transactional channel whose commit fails as a broken connection makes it fail."""

    def __init__(self) -> None:
        self.acked: list[Any] = []

    def basic_ack(self, tag: Any) -> None:
        self.acked.append(tag)

    def tx_commit(self) -> None:
        raise ConnectionResetError("connection reset by peer")


def consumer() -> PoolConsumer:
    """A consumer with only what ``_flush`` uses (no broker, no manager threads)."""
    worker = PoolConsumer.__new__(PoolConsumer)
    worker.leases = LeaseTable()
    worker.manager = SimpleNamespace(name="m")  # type: ignore[assignment]
    worker.exchange = SimpleNamespace(publish_on=lambda *args: None)  # type: ignore[assignment]
    worker._channel = BrokenChannel()
    worker._crash_at = ""
    return worker


@pytest.mark.parametrize("final", [True, False])
def test_a_failed_commit_names_the_job_only_for_a_final_status(
    final: bool, caplog: pytest.LogCaptureFixture
) -> None:
    worker = consumer()
    worker.leases.take("j1", SimpleNamespace(delivery_tag=7))
    worker.leases.offer("j1", {"job_id": "j1", "status": "complete"}, final=final)
    with caplog.at_level(logging.ERROR, logger="lwr.pool.worker"):
        with pytest.raises(ConnectionResetError):
            worker._flush()
    named = "job m/j1: committing its final status and setup acknowledgement failed" in caplog.text
    assert named == final
    assert worker._channel.acked == ([7] if final else [])
    assert worker.leases.get("j1") is not None  # not released: the caller gives it up
