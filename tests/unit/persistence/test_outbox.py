"""The durable outbox: nothing owed to the broker is lost, across reopening the database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lwr.errors import ConfigurationError
from lwr.persistence.outbox import Outbox


def test_messages_stay_until_published_in_order(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    for status in ("queued", "running", "complete"):
        outbox.put("m", "status_update", {"status": status})
    outbox.put("other", "status_update", {"status": "queued"})
    outbox.close()

    outbox = Outbox(tmp_path)  # a restart keeps everything
    entries = outbox.unpublished("m")
    assert [e.body["status"] for e in entries] == ["queued", "running", "complete"]
    outbox.published(entries[0])
    assert [e.body["status"] for e in outbox.unpublished("m")] == ["running", "complete"]
    assert outbox.count("m") == 2
    assert outbox.count() == 3


def test_acknowledged_messages_wait_for_their_ack(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.put("m", "status_update", {"status": "complete"}, ack_uuid="u1")
    (entry,) = outbox.unpublished("m")
    outbox.published(entry, when=100.0)
    assert outbox.unpublished("m") == []
    assert outbox.count("m", unpublished_only=True) == 0
    assert [e.ack_uuid for e in outbox.unacknowledged("m", published_before=200.0)] == ["u1"]
    assert outbox.unacknowledged("m", published_before=50.0) == []
    assert outbox.acknowledge("u1") is True
    assert outbox.acknowledge("u1") is False
    assert outbox.count() == 0


def test_consumed_uuids_are_remembered_and_forgotten(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    assert not outbox.consumed_before("u")
    outbox.remember_consumed("u", "m")
    outbox.remember_consumed("u", "m")
    outbox.close()
    outbox = Outbox(tmp_path)
    assert outbox.consumed_before("u")
    assert outbox.forget_consumed(time.time() - 60) == 0
    assert outbox.forget_consumed(time.time() + 1) == 1
    assert not outbox.consumed_before("u")


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Outbox(tmp_path).close()
    import sqlite3

    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(ConfigurationError, match="newer LWR"):
        Outbox(tmp_path)


def test_final_announcements_are_recorded_with_their_message(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    started = outbox.announced_since()
    assert abs(started - time.time()) < 60
    outbox.put("m", "status_update", {"status": "running"})
    outbox.put("m", "status_update", {"status": "failed"}, final=("j1", 1, "failed"))
    outbox.put("m", "status_update", {"status": "complete"}, final=("j1", 2, "complete"))
    outbox.put("other", "status_update", {"status": "lost"}, final=("j1", 1, "lost"))
    outbox.close()
    outbox = Outbox(tmp_path)
    assert outbox.announcements("m") == {"j1": (2, "complete")}
    assert outbox.announced_since() == started  # recorded once, not on every open
    assert outbox.forget_announced("m", ["j1", "unknown"]) == 1
    assert outbox.announcements("m") == {}
    assert outbox.announcements("other") == {"j1": (1, "lost")}


def test_a_version_1_outbox_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    outbox = Outbox(tmp_path)
    outbox.put("m", "status_update", {"status": "queued"})
    outbox.close()
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:  # what LWR 0.1 wrote
        db.executescript("DROP TABLE announced; DROP TABLE meta; PRAGMA user_version=1;")
    outbox = Outbox(tmp_path)
    assert [e.body["status"] for e in outbox.unpublished("m")] == ["queued"]
    assert outbox.announcements("m") == {}
    assert abs(outbox.announced_since() - time.time()) < 60


def test_early_kills_are_remembered_until_forgotten(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.bury("m", "j1", when=1000.0)
    outbox.bury("m", "j2", when=5000.0)
    outbox.close()
    outbox = Outbox(tmp_path)  # a restart keeps them
    assert outbox.buried("m", "j1", since=500.0)
    assert not outbox.buried("m", "j1", since=2000.0)  # older than the memory asked for
    assert not outbox.buried("other", "j1", since=0.0)  # per manager
    outbox.bury("m", "j1", when=6000.0)  # a kill sent again refreshes it
    assert outbox.buried("m", "j1", since=5500.0)
    outbox.exhume("m", "j1")
    assert not outbox.buried("m", "j1", since=0.0)
    assert outbox.forget_kills(older_than=5001.0) == 1
    assert not outbox.buried("m", "j2", since=0.0)


def test_kills_read_from_the_ledger_are_remembered_at_once_keeping_the_latest(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path)
    outbox.bury("m", "j1", when=5000.0)
    outbox.bury_many("m", [("j1", 1000.0), ("j2", 2000.0), ("j2", 3000.0)])
    assert outbox.buried("m", "j1", since=4000.0)  # an older record does not shorten it
    assert outbox.buried("m", "j2", since=2500.0)
    assert not outbox.buried("other", "j2", since=0.0)
    outbox.bury_many("m", [])
    assert outbox.forget_kills(older_than=4000.0) == 1


def test_a_version_2_outbox_gains_early_kills(tmp_path: Path) -> None:
    import sqlite3

    outbox = Outbox(tmp_path)
    outbox.put("m", "status_update", {"status": "queued"})
    outbox.close()
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:  # what LWR before early kills wrote
        db.executescript("DROP TABLE early_kills; PRAGMA user_version=2;")
    outbox = Outbox(tmp_path)
    assert [e.body["status"] for e in outbox.unpublished("m")] == ["queued"]
    outbox.bury("m", "j", when=1.0)
    assert outbox.buried("m", "j", since=0.0)
