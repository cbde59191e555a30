"""The stage-out record lives in the task's job directory, so the task can rewrite it: whatever it
writes there reads as no outputs, never as an error of the task view (a 500)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.managers.directory import JobDirectory
from lwr.tes.job_files import OUTPUTS_LOG, read_outputs_log


@pytest.fixture
def directory(tmp_path: Path) -> JobDirectory:
    job = JobDirectory(tmp_path / "staging" / "t1")
    job.root.mkdir(parents=True)
    return job


def test_the_record_reads_back(directory: JobDirectory) -> None:
    entry = '{"url": "s3://b/k", "path": "/out/x", "size_bytes": "3"}'
    (directory.root / OUTPUTS_LOG).write_text(f"[{entry}, 7, {{}}]")
    assert read_outputs_log(directory) == [{"url": "s3://b/k", "path": "/out/x", "size_bytes": "3"}]


@pytest.mark.parametrize("text", ["{not json", "[" * 100_000 + "]" * 100_000, "[" * 70 + "]" * 70])
def test_a_record_the_task_mangled_reads_as_no_outputs(directory: JobDirectory, text: str) -> None:
    (directory.root / OUTPUTS_LOG).write_text(text)
    assert read_outputs_log(directory) == []
