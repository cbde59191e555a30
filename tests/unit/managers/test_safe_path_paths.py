"""The path-based fallback of ``safe_path`` (Windows' Python has no ``dir_fd``), forced on Linux.

What the fallback promises: a link planted before the request is refused by the containment
check, and the check is repeated just before each open, rename or unlink, so a directory or file
swapped for a link after :func:`locate` but before that step is refused too. What it cannot
promise (a swap inside the instant between the check and the open) is not tested here: only the
descriptor backend closes that gap (``tests/unit/web/test_job_confinement.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.errors import AuthorizationError, InvalidRequestError, NotFoundError
from lwr.managers import safe_path


@pytest.fixture(autouse=True)
def paths_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safe_path, "BACKEND", "paths")


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "job"
    (root / "outputs").mkdir(parents=True)
    (root / "outputs" / "out.txt").write_bytes(b"result")
    (tmp_path / "secret").write_bytes(b"secret")
    yield root


def read(found: safe_path.Located) -> bytes:
    with os.fdopen(safe_path.open_regular(found), "rb") as handle:
        return handle.read()


def test_the_choice_is_made_once_from_the_environment_and_the_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert safe_path._choose_backend("") == "descriptors"  # Linux has dir_fd
    assert safe_path._choose_backend("paths") == "paths"
    with pytest.raises(ValueError, match="LWR_SAFE_PATH"):
        safe_path._choose_backend("symlinks")
    monkeypatch.setattr(os, "supports_dir_fd", set())  # as on Windows
    assert safe_path._choose_backend("") == "paths"
    code = "import lwr.managers.safe_path as s; print(s.BACKEND)"
    env = {**os.environ, "LWR_SAFE_PATH": "paths"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "paths"


def test_reads_writes_and_replaces_by_path(job: Path) -> None:
    with safe_path.locate(job, ["outputs", "out.txt"]) as found:
        assert isinstance(found.dir_fd, str)
        assert read(found) == b"result"
    with safe_path.locate(job, ["inputs", "new", "in.txt"], create=True) as found:
        fd, tmp = safe_path.open_temporary(found.dir_fd, ".upload-")
        with os.fdopen(fd, "wb") as out:
            out.write(b"data")
        safe_path.put_in_place(found, tmp)
    assert (job / "inputs" / "new" / "in.txt").read_bytes() == b"data"
    assert os.listdir(job / "inputs" / "new") == ["in.txt"]


def test_links_planted_before_the_request_are_refused(job: Path, tmp_path: Path) -> None:
    (job / "outputs" / "leak").symlink_to(tmp_path / "secret")
    (job / "outputs" / "away").symlink_to(tmp_path)
    (job / "outputs" / "sibling").symlink_to("out.txt")
    for parts in (["outputs", "leak"], ["outputs", "away", "secret"], [".."]):
        with pytest.raises(AuthorizationError):
            with safe_path.locate(job, parts):
                pass
    with safe_path.locate(job, ["outputs", "sibling"]) as found:  # inside the job: served
        assert read(found) == b"result"


def test_a_directory_swapped_for_a_link_after_locate_is_refused_at_the_open(
    job: Path, tmp_path: Path
) -> None:
    (tmp_path / "out.txt").write_bytes(b"outside")
    with safe_path.locate(job, ["outputs", "out.txt"]) as found:
        (job / "outputs").rename(job / "moved")
        (job / "outputs").symlink_to(tmp_path)
        with pytest.raises(AuthorizationError):
            safe_path.open_regular(found)
        with pytest.raises(AuthorizationError):
            safe_path.open_temporary(found.dir_fd, ".upload-")
        with pytest.raises(AuthorizationError):
            safe_path.put_in_place(found, "whatever")
    assert sorted(os.listdir(tmp_path)) == ["job", "out.txt", "secret"]


def test_a_file_swapped_for_a_link_after_locate_is_refused(job: Path, tmp_path: Path) -> None:
    with safe_path.locate(job, ["outputs", "out.txt"]) as found:
        (job / "outputs" / "out.txt").unlink()
        (job / "outputs" / "out.txt").symlink_to(tmp_path / "secret")
        with pytest.raises(AuthorizationError):
            safe_path.open_regular(found)


def test_directories_missing_or_named_as_files(job: Path) -> None:
    with pytest.raises(NotFoundError):
        with safe_path.locate(job, ["nothere", "x"]):
            pass
    with pytest.raises(InvalidRequestError):
        with safe_path.locate(job, ["outputs", "out.txt", "x"]):
            pass
    with pytest.raises(safe_path.NamesADirectoryError):
        with safe_path.locate(job, ["outputs", ".."]):
            pass
    with safe_path.locate(job, ["outputs"]) as found:
        assert safe_path.is_directory(found)
        with pytest.raises(NotFoundError):
            safe_path.open_regular(found)


def test_control_files_that_are_links_read_as_a_note(job: Path, tmp_path: Path) -> None:
    (job / "stdout").symlink_to(tmp_path / "secret")
    (job / "stderr").write_bytes(b"err")
    assert safe_path.read_control(job, "stdout", None) == (
        b"",
        "stdout is a symbolic link; it was not followed",
    )
    assert safe_path.read_control(job, "stderr", None) == (b"err", None)
    assert safe_path.read_control(job, "return_code", None) == (None, None)
    assert safe_path.read_control(tmp_path / "gone", "stdout", None) == (None, None)
