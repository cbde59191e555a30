"""The opt-in for users' file:// and s3:// places: parsing, judging names, keeping apart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lwr.errors import ConfigurationError, StagingError
from lwr.tes.policy import InputQuotaError
from lwr.tes.user_storage import parse_user_storage, read_into, write_from


def test_options_are_parsed_and_checked(tmp_path: Path) -> None:
    found = parse_user_storage("/srv/tes/{user}, rel/dir", "s3://shared/{user} other", tmp_path)
    assert found.file_roots == ("/srv/tes/{user}", str(tmp_path / "rel" / "dir"))
    assert found.s3_places == (("shared", "{user}"), ("other", ""))
    for roots, buckets in (("/a/{other}", ""), ("/a/{user}/{user}", ""), ("", "b/../c"),
                           ("", "{user}/x")):  # fmt: skip
        with pytest.raises(ConfigurationError):
            parse_user_storage(roots, buckets, tmp_path)
    assert parse_user_storage("", "", tmp_path).file_roots == ()


def test_file_names_are_judged_by_components() -> None:
    storage = parse_user_storage("/srv/tes/{user}", "", Path("/"))
    assert storage.file_place("alice", "/srv/tes/alice/d/x") == (Path("/srv/tes/alice"), ["d", "x"])
    for path in ("/srv/tes/alice/../bob/x", "/srv/tes/alice2/x", "/srv/tes/alice",
                 "/srv/tes/bob/x", "srv/tes/alice/x", "/srv/tes/alice/./x"):  # fmt: skip
        assert storage.file_place("alice", path) is None, path


def test_s3_places_match_whole_segments() -> None:
    storage = parse_user_storage("", "shared/data/{user} open", Path("/"))
    for url in ("s3://shared/data/alice/x", "s3://shared/data/alice/", "s3://open/any/key"):
        assert storage.s3_allows("alice", url), url
    for url in ("s3://shared/data/alice2/x", "s3://shared/data/bob/x", "s3://shared/data",
                "s3://shared/data/alice/../bob/x", "s3://shared/data/alice//x",
                "s3://other/data/alice/x", "s3://open/a/./b"):  # fmt: skip
        assert not storage.s3_allows("alice", url), url


def test_roots_keep_apart_from_the_servers_own_files(tmp_path: Path) -> None:
    staging = tmp_path / "lwr" / "staging"
    for roots in (str(tmp_path), str(staging / "x"), f"{tmp_path}/{{user}}"):
        with pytest.raises(ConfigurationError, match="tes_user_file_roots"):
            parse_user_storage(roots, "", tmp_path).check_apart([staging], "")
    parse_user_storage(f"{tmp_path}/users/{{user}}", "", tmp_path).check_apart([staging], "")
    here = tmp_path / "lwr"  # server.ini's directory: a root may lie in it, not hold it
    parse_user_storage(f"{here}/users/{{user}}", "", tmp_path).check_apart([], "", [here])
    with pytest.raises(ConfigurationError, match="configuration"):
        parse_user_storage(f"{tmp_path}/{{user}}", "", tmp_path).check_apart([], "", [here])
    with pytest.raises(ConfigurationError, match="retention_s3_bucket"):
        parse_user_storage("", "archive/{user}", tmp_path).check_apart([], "archive")


def test_confined_reads_and_writes(tmp_path: Path) -> None:
    root, outside, job = tmp_path / "root", tmp_path / "outside", tmp_path / "job"
    for directory in (root, outside, job):
        directory.mkdir()
    (outside / "secret").write_text("no")
    (root / "data").write_text("yes")
    (root / "inner").symlink_to("data")
    (root / "out").symlink_to(outside / "secret")
    (root / "dir-out").symlink_to(outside)
    read_into(root, ["inner"], job / "got")
    assert (job / "got").read_text() == "yes"
    for parts in (["out"], ["dir-out", "secret"]):
        with pytest.raises(StagingError, match="leads out of"):
            read_into(root, parts, job / "got2")
    with pytest.raises(StagingError, match="leads out of"):
        write_from(job / "got", root, ["dir-out", "new"])
    assert sorted(os.listdir(outside)) == ["secret"]
    write_from(job / "got", root, ["made", "new"])
    assert (root / "made" / "new").read_text() == "yes"

    def refuse(count: int) -> None:
        raise InputQuotaError("over the plan")

    with pytest.raises(InputQuotaError):
        read_into(root, ["data"], job / "kept-not", refuse)
    assert sorted(os.listdir(job)) == ["got"]
