"""Input sizes stage-in records: the store's placeholder rule and what a size counts."""

from __future__ import annotations

import os
from pathlib import Path

from lwr.persistence.store import JobRecord, JobStore
from lwr.tes.job_files import size_below


def test_a_placeholder_never_replaces_a_recorded_size(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db")
    store.put(JobRecord(manager="m", job_id="j"))
    store.record_file("m", "j", "input", "/in/a", 500)  # stage-in was first
    store.record_file("m", "j", "input", "/in/a", 0, replace=False)  # create's placeholder
    store.record_file("m", "j", "input", "/in/b", 0, replace=False)
    files = store.files_of([JobRecord(manager="m", job_id="j")])[("m", "j")]
    assert [(f.name, f.size) for f in files] == [("/in/a", 500), ("/in/b", 0)]
    store.record_file("m", "j", "input", "/in/b", 7)  # stage-in after it
    files = store.files_of([JobRecord(manager="m", job_id="j")])[("m", "j")]
    assert [(f.name, f.size) for f in files] == [("/in/a", 500), ("/in/b", 7)]
    store.close()


def test_a_size_counts_regular_files_and_no_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x" * 1000)
    single = tmp_path / "one.bin"
    single.write_bytes(b"1" * 10)
    assert size_below(single) == 10
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a").write_bytes(b"a" * 3)
    (tree / "sub" / "b").write_bytes(b"b" * 4)
    os.symlink(outside, tree / "sub" / "link")
    os.symlink(tmp_path, tree / "dirlink")
    assert size_below(tree) == 7
    os.symlink(outside, tmp_path / "top-link")
    assert size_below(tmp_path / "top-link") == 0
    assert size_below(tmp_path / "missing") == 0
