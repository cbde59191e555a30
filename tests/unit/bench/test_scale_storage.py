"""bench/scale_storage.py: where the scale test puts its jobs, and emptying that place."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench import scale_storage


def test_needs_grow_with_the_largest_level() -> None:
    assert scale_storage.needs(100) == (1024**3, 100 * scale_storage.INODES_PER_JOB + 100_000)
    need_bytes, need_inodes = scale_storage.needs(100_000)
    assert need_bytes == 100_000 * scale_storage.BYTES_PER_JOB
    # 100,000 jobs of both servers need more inodes than Debian's /dev/shm has on 24 GiB
    assert need_inodes > 3_085_511


def test_has_room_checks_space_and_inodes(tmp_path: Path) -> None:
    stat = os.statvfs(tmp_path)
    free = stat.f_bavail * stat.f_frsize
    assert scale_storage.has_room(str(tmp_path), 1, 1)
    assert not scale_storage.has_room(str(tmp_path), free * 2 + 1, 1)
    if stat.f_files:
        assert not scale_storage.has_room(str(tmp_path), 1, stat.f_favail * 2 + 1)


def test_a_directory_with_room_is_used_and_emptied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = tmp_path / "place"
    place.mkdir()
    monkeypatch.setenv("LWR_BENCH_SCALE_DIR", str(place))
    storage = scale_storage.choose(tmp_path / "scratch", 100)
    assert storage.root.parent == place and storage.mount is None
    trees = [storage.root / "lwr", storage.root / "pulsar"]
    for tree in trees:
        (tree / "files" / "staging" / "hist1").mkdir(parents=True)
        (tree / "files" / "staging" / "hist1" / "job.sh").write_text("true\n")
    assert storage.remove(trees) >= 0
    assert list(place.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_without_room_anywhere_root_mounts_a_tmpfs_and_umount_empties_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LWR_BENCH_SCALE_DIR", raising=False)
    monkeypatch.setattr(scale_storage, "has_room", lambda *_args: False)
    storage = scale_storage.choose(tmp_path, 100_000)
    assert storage.mount == storage.root and storage.root.parent == tmp_path
    assert "tmpfs of its own" in storage.what
    mounts = Path("/proc/mounts").read_text()
    assert f" {storage.root} tmpfs " in mounts
    (storage.root / "lwr" / "hist1").mkdir(parents=True)
    storage.remove([storage.root / "lwr"])
    assert f" {storage.root} " not in Path("/proc/mounts").read_text()
    assert not storage.root.exists()


def test_stale_mounts_are_those_of_benches_gone() -> None:
    mounts = "\n".join(
        [
            "lwr-bench-scale-101 /tmp/a tmpfs rw,size=1g 0 0",
            "lwr-bench-scale-202 /tmp/with\\040blank tmpfs rw 0 0",
            "lwr-bench-scale-303 /tmp/live tmpfs rw 0 0",
            "lwr-bench-scale /tmp/old-unnamed tmpfs rw 0 0",  # not ours to judge: no pid
            "tmpfs /dev/shm tmpfs rw 0 0",
            "/dev/sda1 / ext4 rw 0 0",
        ]
    )
    stale = scale_storage.stale_mounts(mounts, lambda pid: pid == 303)
    assert stale == [Path("/tmp/a"), Path("/tmp/with blank")]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_killed_benchs_tmpfs_is_reclaimed_by_the_next(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    mine, theirs = tmp_path / "killed", tmp_path / "live"
    for point, pid in ((mine, dead.pid), (theirs, os.getpid())):
        point.mkdir()
        source = f"{scale_storage.MOUNT_SOURCE}-{pid}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", source, str(point)], check=True)
    try:
        assert mine in scale_storage.reclaim_stale()
        mounts = Path("/proc/mounts").read_text()
        assert f" {mine} " not in mounts and not mine.exists()
        assert f" {theirs} " in mounts  # a live bench's mount is left alone
    finally:
        for point in (mine, theirs):
            subprocess.run(["umount", str(point)], capture_output=True)
