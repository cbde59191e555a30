"""bench/history.py: cloning a finished job's directory and job-store rows under fresh ids.

The rows are written into a real LWR job store (``lwr.persistence.store.JobStore`` on SQLite)
and read back through it, as the server reads them; no server is started here.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from bench import history
from lwr.managers.base import JobState
from lwr.persistence.store import JobRecord, JobStore


def test_the_id_is_replaced_only_as_a_whole_word() -> None:
    data = b"/s/hist9/w hist90 xhist9 hist9_ hist9.sh hist9"
    pieces = history.split_on_id(data, "hist9")
    assert b"NEW".join(pieces) == b"/s/NEW/w hist90 xhist9 hist9_ NEW.sh NEW"
    assert history.split_on_id(b"nothing here", "hist9") == (b"nothing here",)


def _job_directory(parent: Path, job_id: str) -> Path:
    job = parent / job_id
    (job / "working" / "deep").mkdir(parents=True)
    (job / "outputs").mkdir(mode=0o700)
    (job / "job.sh").write_text(f"#!/bin/sh\ncd {job}/working\n")
    (job / "job.sh").chmod(0o755)
    (job / "return_code").write_text("0")
    (job / "working" / "deep" / f"{job_id}.log").write_bytes(b"\x00\xffbinary " + job_id.encode())
    (job / "empty").touch()
    os.symlink(f"{job}/working", job / "link")
    return job


def test_a_clone_is_the_template_with_its_id_replaced(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    job = _job_directory(staging, "hist7")
    template = history.read_template(job)
    assert template.job_id == "hist7"
    assert history.clone_directories(template, staging, ["hist70", "hist123"]) == 2

    clone = staging / "hist123"
    assert (clone / "job.sh").read_text() == f"#!/bin/sh\ncd {clone}/working\n"
    assert stat.S_IMODE((clone / "job.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((clone / "outputs").stat().st_mode) == 0o700
    assert (clone / "working" / "deep" / "hist123.log").read_bytes() == b"\x00\xffbinary hist123"
    assert os.readlink(clone / "link") == f"{clone}/working"
    assert (clone / "empty").read_bytes() == b""
    assert (staging / "hist70" / "return_code").read_text() == "0"
    names = sorted(str(p.relative_to(clone)) for p in clone.rglob("*"))
    template_names = sorted(
        str(p.relative_to(job)).replace("hist7", "hist123") for p in job.rglob("*")
    )
    assert names == template_names
    # the template itself is untouched
    assert (job / "job.sh").read_text() == f"#!/bin/sh\ncd {job}/working\n"


def test_a_clone_never_overwrites_an_existing_job(tmp_path: Path) -> None:
    job = _job_directory(tmp_path, "hist1")
    template = history.read_template(job)
    (tmp_path / "hist2").mkdir()
    with pytest.raises(FileExistsError):
        history.write_clone(template, tmp_path, "hist2")
    with pytest.raises(FileExistsError):
        history.write_clone(template, tmp_path, "hist1")


def test_only_files_directories_and_symlinks_are_cloned(tmp_path: Path) -> None:
    job = tmp_path / "hist1"
    job.mkdir()
    os.mkfifo(job / "pipe")
    with pytest.raises(ValueError, match="not a file, directory or symlink"):
        history.read_template(job)


def test_tmpfs_bytes_counts_whole_pages_and_an_inode_per_entry() -> None:
    template = history.Template(
        "hist1",
        (
            history.Entry((b"d",), "dir", 0o755),
            history.Entry((b"empty",), "file", 0o644),
            history.Entry((b"one",), "file", 0o644, (b"x",)),
            history.Entry((b"big",), "file", 0o644, (b"y" * 4096, b"")),  # 4096 + len("hist1")
            history.Entry((b"l",), "link", 0o777, (b"/t/", b"")),
        ),
    )
    inode, page = history.INODE_BYTES, history.PAGE
    assert template.tmpfs_bytes == 6 * inode + 0 + page + 2 * page


def _store_with_template(persisted: Path) -> JobStore:
    store = JobStore(persisted)
    store.put(JobRecord("_default_", "hist0", state=JobState.COMPLETE, return_code=0))
    record = JobRecord(
        "_default_",
        "hist1",
        state=JobState.COMPLETE,
        return_code=0,
        launch={"setup": {"tool_id": "t"}, "dir": "/s/hist1/working", "other": "hist10"},
    )
    store.put(record)
    store.record_file("_default_", "hist1", "input", "hist1.dat", 12)
    return store


def test_rows_are_cloned_with_fresh_ids_and_queue_order(tmp_path: Path) -> None:
    store = _store_with_template(tmp_path)
    template = store.get("_default_", "hist1")
    assert template is not None
    counts = history.clone_rows(tmp_path / "jobs.sqlite3", "hist1", ["hist2", "hist3"])
    assert counts["jobs"] == 2 and counts["job_files"] == 2

    reread = JobStore(tmp_path)
    clones = [reread.get("_default_", job_id) for job_id in ("hist2", "hist3")]
    assert all(c is not None for c in clones)
    assert [c.seq for c in clones if c] == [template.seq + 1, template.seq + 2]
    for clone in clones:
        assert clone is not None
        assert clone.state is JobState.COMPLETE and clone.return_code == 0
        assert clone.launch == {
            "setup": {"tool_id": "t"},
            "dir": f"/s/{clone.job_id}/working",
            "other": "hist10",
        }
        assert clone.finished == template.finished
    assert reread.count("_default_") == 4
    files = sqlite3.connect(tmp_path / "jobs.sqlite3").execute(
        "SELECT job_id, name, size FROM job_files ORDER BY job_id"
    )
    assert files.fetchall() == [
        ("hist1", "hist1.dat", 12),
        ("hist2", "hist2.dat", 12),
        ("hist3", "hist3.dat", 12),
    ]


def test_other_tables_keep_their_own_seq(tmp_path: Path) -> None:
    database = tmp_path / "jobs.sqlite3"
    db = sqlite3.connect(database)
    db.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, seq INTEGER)")
    db.execute("CREATE TABLE side (job_id TEXT, seq INTEGER, note TEXT)")
    db.execute("CREATE TABLE unrelated (name TEXT)")
    db.executemany("INSERT INTO jobs VALUES (?, ?)", [("hist1", 5), ("hist0", 9)])
    db.execute("INSERT INTO side VALUES ('hist1', 42, 'of hist1')")
    db.execute("INSERT INTO unrelated VALUES ('hist1')")
    db.commit()
    db.close()
    counts = history.clone_rows(database, "hist1", ["hist2"])
    assert counts == {"jobs": 1, "side": 1}
    db = sqlite3.connect(database)
    assert db.execute("SELECT seq FROM jobs WHERE job_id='hist2'").fetchone() == (10,)
    assert db.execute("SELECT seq, note FROM side WHERE job_id='hist2'").fetchone() == (
        42,
        "of hist2",
    )
    assert db.execute("SELECT COUNT(*) FROM unrelated").fetchone() == (1,)


def test_a_clash_writes_no_row_at_all(tmp_path: Path) -> None:
    store = _store_with_template(tmp_path)
    with pytest.raises(sqlite3.IntegrityError):
        history.clone_rows(tmp_path / "jobs.sqlite3", "hist1", ["hist5", "hist0"])
    assert store.get("_default_", "hist5") is None
    assert store.count("_default_") == 2


def test_sample_is_reproducible_and_inside_the_clones() -> None:
    drawn = history.sample(100, 1000, 20, seed=1000)
    assert drawn == history.sample(100, 1000, 20, seed=1000)
    assert len(set(drawn)) == 20
    indices = [int(job_id.removeprefix("hist")) for job_id in drawn]
    assert indices == sorted(indices) and all(100 <= i < 1000 for i in indices)
    assert history.sample(100, 105, 20, seed=1) == [f"hist{i}" for i in range(100, 105)]
    assert history.sample(100, 100, 20, seed=1) == []


@pytest.mark.parametrize(
    ("levels", "maximum", "expected"),
    [
        ((100, 1000, 10000), None, (100, 1000, 10000)),
        ((100, 1000, 10000), 100000, (100, 1000, 10000, 100000)),
        ((100, 1000), 100000, (100, 1000, 10000, 100000)),
        ((100, 1000, 10000), 1000, (100, 1000)),
        ((100, 1000, 10000), 50000, (100, 1000, 10000, 50000)),
        ((100, 1000), 50, (50,)),
    ],
)
def test_scale_max_extends_the_levels_tenfold(
    levels: tuple[int, ...], maximum: int | None, expected: tuple[int, ...]
) -> None:
    assert history.levels_up_to(levels, maximum) == expected


def test_mem_available_reads_the_kernel_estimate(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   2048 kB\n")
    assert history.mem_available(str(meminfo)) == 2048 * 1024
    meminfo.write_text("MemTotal:       24000000 kB\n")
    assert history.mem_available(str(meminfo)) is None
    assert history.mem_available(str(tmp_path / "missing")) is None


def test_room_short_names_what_is_missing() -> None:
    gib = 1024**3
    fits = {"free_bytes": 10 * gib, "free_inodes": 1000, "available": 20 * gib, "margin": 4 * gib}
    assert history.room_short(gib, 1000, 2 * gib, **fits) == ""
    assert "GiB free" in history.room_short(11 * gib, 10, gib, **fits)
    assert "inodes" in history.room_short(gib, 1001, gib, **fits)
    assert history.room_short(gib, 10**9, gib, **{**fits, "free_inodes": None}) == ""
    assert "margin" in history.room_short(gib, 10, 17 * gib, **fits)
    assert history.room_short(gib, 10, 17 * gib, **{**fits, "available": None}) == ""


def test_data_bytes_and_inodes_of_a_real_directory(tmp_path: Path) -> None:
    template = history.read_template(_job_directory(tmp_path, "hist7"))
    # job.sh, return_code, the log: one page each; 'empty' none; dirs and the link no data
    assert template.data_bytes == 3 * history.PAGE
    # working, working/deep, outputs, job.sh, return_code, the log, empty, link + the job's own
    assert template.inodes == 9
    assert template.tmpfs_bytes == 3 * history.PAGE + 9 * history.INODE_BYTES
