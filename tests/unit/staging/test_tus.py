"""The tus mover's pure part: where Galaxy's tus endpoint is, given the job's files endpoint."""

from __future__ import annotations

import pytest

from lwr.errors import StagingError
from lwr.staging.tus import tus_endpoint


@pytest.mark.parametrize(
    ("files", "tus"),
    [
        (
            "https://gx.org/api/jobs/f2db41e1fa331b3e/files?job_key=abc&path=%2Fd%2Fx&file_type=output",
            "https://gx.org/api/job_files/resumable_upload?job_key=abc&path=%2Fd%2Fx&file_type=output",
        ),
        (
            "http://h:8080/galaxy/api/jobs/7/files",  # under a URL prefix
            "http://h:8080/galaxy/api/job_files/resumable_upload",
        ),
    ],
)
def test_tus_endpoint_replaces_the_job_files_path_and_keeps_the_query(files: str, tus: str) -> None:
    assert tus_endpoint(files) == tus


def test_a_files_endpoint_of_another_shape_is_refused_with_its_key_redacted() -> None:
    with pytest.raises(StagingError, match=r"jobs/<id>/files.*job_key=\[redacted\]"):
        tus_endpoint("http://h/files?job_key=secret")
