"""The jobs the client remembers for ``lwr list`` / ``status`` / ``clean``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lwr.client.known_jobs import KnownJob, KnownJobs, default_directory, new_entry
from lwr.errors import InvalidRequestError


def test_remember_find_and_forget(tmp_path: Path) -> None:
    known = KnownJobs(tmp_path / "state")
    assert known.all() == []
    older = KnownJob("a", "http://one:8913/", None, "sort x", 1.0)
    newer = KnownJob("b", "http://one:8913", "big", "wc y", 2.0)
    known.remember(older)
    known.remember(newer)
    assert known.all() == [newer, older]  # newest first
    assert known.find("a") == older
    assert known.find("b", url="http://one:8913/") == newer  # trailing slash or not
    known.forget(older)
    assert known.all() == [newer]


def test_the_token_is_never_written(tmp_path: Path) -> None:
    known = KnownJobs(tmp_path)
    known.remember(new_entry("a", "http://h:1/", None, "true"))
    (entry,) = tmp_path.glob("*.json")
    fields = set(json.loads(entry.read_text()))
    assert fields == {"job_id", "url", "manager", "command", "submitted"}


def test_an_unknown_job_needs_a_url_and_an_ambiguous_one_too(tmp_path: Path) -> None:
    known = KnownJobs(tmp_path)
    with pytest.raises(InvalidRequestError, match="--url"):
        known.find("x")
    assert known.find("x", url="http://h:1/") == KnownJob("x", "http://h:1/")
    known.remember(KnownJob("x", "http://one/", submitted=1))
    known.remember(KnownJob("x", "http://two/", submitted=2))
    with pytest.raises(InvalidRequestError, match="several servers"):
        known.find("x")
    assert known.find("x", url="http://two").url == "http://two/"


def test_unreadable_entries_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"unexpected": 1}')
    assert KnownJobs(tmp_path).all() == []


def test_state_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LWR_CLIENT_STATE_DIR", str(tmp_path / "mine"))
    assert default_directory() == tmp_path / "mine"
    monkeypatch.delenv("LWR_CLIENT_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_directory() == tmp_path / "xdg" / "lwr" / "jobs"
