"""Pulsar's layout: the default manager's jobs move up out of ``_default_/`` at start-up."""

from __future__ import annotations

import os
from pathlib import Path

from lwr.managers.layout import migrate_legacy_default, staging_root


def _legacy_job(staging: Path, job_id: str) -> Path:
    job = staging / "_default_" / job_id
    (job / "outputs").mkdir(parents=True)
    (job / "outputs" / "out.txt").write_text(f"output of {job_id}\n")
    return job


def test_roots() -> None:
    base = Path("/srv/staging")
    assert staging_root(base, "_default_", None) == base
    assert staging_root(base, "slurm", None) == base / "slurm"
    assert staging_root(base, "slurm", Path("/elsewhere")) == Path("/elsewhere")


def test_finished_jobs_move_up_and_the_old_directory_goes(tmp_path: Path) -> None:
    _legacy_job(tmp_path, "1")
    _legacy_job(tmp_path, "2")
    assert migrate_legacy_default(tmp_path, lambda job_id: True) == 2
    assert (tmp_path / "1" / "outputs" / "out.txt").read_text() == "output of 1\n"
    assert (tmp_path / "2" / "outputs" / "out.txt").read_text() == "output of 2\n"
    assert not (tmp_path / "_default_").exists()
    assert migrate_legacy_default(tmp_path, lambda job_id: True) == 0  # idempotent


def test_a_running_job_keeps_its_old_path_as_a_link(tmp_path: Path) -> None:
    _legacy_job(tmp_path, "7")
    assert migrate_legacy_default(tmp_path, lambda job_id: False) == 1
    old = tmp_path / "_default_" / "7"
    assert old.is_symlink() and os.path.realpath(old) == str(tmp_path / "7")
    (old / "return_code").write_text("0\n")  # the job script writes through its old path
    assert (tmp_path / "7" / "return_code").read_text() == "0\n"
    # once the job is final, the next start removes the link and the old directory
    assert migrate_legacy_default(tmp_path, lambda job_id: True) == 0
    assert not (tmp_path / "_default_").exists()
    assert (tmp_path / "7" / "return_code").exists()


def test_a_move_interrupted_after_the_rename_is_finished(tmp_path: Path) -> None:
    legacy = _legacy_job(tmp_path, "3").parent
    os.symlink(tmp_path / "3", legacy / ".moving-3")
    os.rename(legacy / "3", tmp_path / "3")  # crash here: no link at the old name yet
    migrate_legacy_default(tmp_path, lambda job_id: False)
    assert (legacy / "3").is_symlink()
    assert not os.path.lexists(legacy / ".moving-3")
    assert (tmp_path / "3" / "outputs" / "out.txt").exists()


def test_a_move_interrupted_before_the_rename_starts_over(tmp_path: Path) -> None:
    legacy = _legacy_job(tmp_path, "4").parent
    os.symlink(tmp_path / "4", legacy / ".moving-4")  # crash here: nothing renamed yet
    migrate_legacy_default(tmp_path, lambda job_id: True)
    assert (tmp_path / "4" / "outputs" / "out.txt").read_text() == "output of 4\n"
    assert not legacy.exists()


def test_a_clash_leaves_both_directories_alone(tmp_path: Path) -> None:
    _legacy_job(tmp_path, "5")
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "mine").write_text("newer job\n")
    assert migrate_legacy_default(tmp_path, lambda job_id: True) == 0
    assert (tmp_path / "_default_" / "5" / "outputs" / "out.txt").exists()
    assert (tmp_path / "5" / "mine").read_text() == "newer job\n"


def test_half_deleted_directories_follow(tmp_path: Path) -> None:
    (tmp_path / "_default_" / ".deleting-9-abcd1234").mkdir(parents=True)
    migrate_legacy_default(tmp_path, lambda job_id: True)
    assert (tmp_path / ".deleting-9-abcd1234").is_dir()
    assert not (tmp_path / "_default_").exists()
