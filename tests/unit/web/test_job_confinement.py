"""A running job cannot reach outside its directory through the server, nor change the cache.

The job is played either by a real job process or by the test itself, renaming a directory of the
job and planting a symlink to a directory outside at the worst moment: right after the server
checked the name (``JobDirectory.resolve``) and before it opens the file. Code that opens by path
after checking follows the link; every refusal here is a 4xx JSON answer and nothing outside the
job is created, changed or served.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lwr.managers import safe_path
from lwr.managers.directory import JobDirectory
from lwr.web.controllers import files
from tests.unit.web.dispatch_support import AppFactory, Client, assert_error


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    place = tmp_path / "outside"
    place.mkdir()
    (place / "secret").write_bytes(b"not the job's")
    return place


def swap_after_check(monkeypatch: pytest.MonkeyPatch, job: Path, outside: Path) -> None:
    """After the name check, the job renames ``working/sub`` away and links it to ``outside``."""
    checked = JobDirectory.resolve

    def resolve_then_swap(self: JobDirectory, *args: Any, **kwargs: Any) -> Path:
        path = checked(self, *args, **kwargs)
        sub = job / "working" / "sub"
        if not sub.is_symlink():
            os.rename(sub, job / "working" / "sub.moved")
            os.symlink(outside, sub)
        return path

    monkeypatch.setattr(JobDirectory, "resolve", resolve_then_swap)


def prepared_job(client: Client) -> Path:
    client.setup("1")
    job = client.app.config.staging_directory / "1"
    (job / "working" / "sub").mkdir()
    (job / "working" / "sub" / "secret").write_bytes(b"the job's own")
    return job


def snapshot(place: Path) -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in place.iterdir()}


def test_upload_refuses_a_directory_swapped_for_a_link_after_the_check(
    client: Client, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = prepared_job(client)
    before = snapshot(outside)
    swap_after_check(monkeypatch, job, outside)
    params = {"type": "workdir", "name": "sub/planted"}
    assert_error(client("POST", "/jobs/1/files", params, body=b"client bytes"), 403)
    assert_error(client("PUT", "/jobs/1/files", {**params, "name": "sub/secret"}, body=b"x"), 403)
    assert snapshot(outside) == before


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_directory_swapped_between_the_walks_look_and_its_open_is_refused(
    client: Client, outside: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """The narrowest window: the walk saw ``sub`` as a directory (lstat), the job swaps it for a
    link before the walk opens it; ``O_NOFOLLOW`` on that open stands in the way (a download has
    no other check after it)."""
    job = prepared_job(client)
    before = snapshot(outside)
    looked = safe_path._lstat
    swapped = []

    def look_then_swap(name: str, dir_fd: int | str) -> os.stat_result | None:
        info = looked(name, dir_fd)
        sub = job / "working" / "sub"
        if name == "sub" and not swapped:
            os.rename(sub, job / "working" / "sub.moved")
            os.symlink(outside, sub)
            swapped.append(name)
        return info

    monkeypatch.setattr(safe_path, "_lstat", look_then_swap)
    if method == "GET":
        params = {"type": "output_workdir", "name": "sub/secret"}
        answer = client("GET", "/jobs/1/files", params)
        assert b"not the job's" not in answer.body
    else:
        params = {"type": "workdir", "name": "sub/planted"}
        answer = client("POST", "/jobs/1/files", params, body=b"client bytes")
    assert swapped
    assert_error(answer, 403)
    assert snapshot(outside) == before


def test_download_refuses_a_directory_swapped_for_a_link_after_the_check(
    client: Client, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = prepared_job(client)
    swap_after_check(monkeypatch, job, outside)
    response = client("GET", "/jobs/1/files", {"type": "output_workdir", "name": "sub/secret"})
    assert_error(response, 403)
    assert b"not the job's" not in response.body


def test_path_query_refuses_a_directory_swapped_for_a_link_after_the_check(
    client: Client, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = prepared_job(client)
    swap_after_check(monkeypatch, job, outside)
    for file_type in ("workdir", "output_workdir"):
        response = client("GET", "/jobs/1/files/path", {"type": file_type, "name": "sub/secret"})
        assert_error(response, 403)


@pytest.mark.parametrize("replacement", ["link", "directory"])
def test_upload_whose_directory_moves_while_it_is_written_is_taken_back(
    client: Client, outside: Path, monkeypatch: pytest.MonkeyPatch, replacement: str
) -> None:
    """The bytes stay in the directory that was opened; the client is told, the file removed."""
    job = prepared_job(client)
    before = snapshot(outside)
    received = files.receive
    sub = job / "working" / "sub"

    def receive_while_job_swaps(ctx: Any, fd: int, *budget: Any) -> int:
        count = received(ctx, fd, *budget)
        os.rename(sub, job / "working" / "sub.moved")
        if replacement == "link":
            os.symlink(outside, sub)
        else:
            sub.mkdir()  # a new directory of the same name: not where the bytes are
        return count

    monkeypatch.setattr(files, "receive", receive_while_job_swaps)
    response = client(
        "POST", "/jobs/1/files", {"type": "workdir", "name": "sub/new"}, body=b"client bytes"
    )
    assert_error(response, 403, "moved or replaced")
    assert snapshot(outside) == before
    assert sorted(os.listdir(job / "working" / "sub.moved")) == ["secret"]


def test_links_planted_before_the_request_are_refused_and_clean_keeps_outside(
    client: Client, outside: Path
) -> None:
    job = prepared_job(client)
    before = snapshot(outside)
    os.rename(job / "working" / "sub", job / "working" / "sub.moved")
    os.symlink(outside, job / "working" / "sub")
    os.symlink(outside / "secret", job / "outputs" / "out.dat")
    assert_error(
        client("POST", "/jobs/1/files", {"type": "workdir", "name": "sub/f"}, body=b"x"), 403
    )
    assert_error(client("GET", "/jobs/1/files", {"type": "output", "name": "out.dat"}), 403)
    assert_error(client("GET", "/jobs/1/files/path", {"type": "workdir", "name": "sub/f"}), 403)
    assert client("DELETE", "/jobs/1").status_int == 200
    assert not job.exists()
    assert snapshot(outside) == before


def test_links_inside_the_job_still_work(client: Client) -> None:
    job = prepared_job(client)
    os.symlink("../working/sub", job / "outputs" / "alias")
    os.symlink(str(job / "working" / "sub" / "secret"), job / "outputs" / "abs")
    for name in ("alias/secret", "abs"):
        response = client("GET", "/jobs/1/files", {"type": "output", "name": name})
        assert response.status_int == 200, response.text
        assert response.body == b"the job's own"


def test_a_job_linking_its_stdout_and_stderr_out_gets_a_note_not_the_content(
    client: Client, outside: Path, wait_for: Callable[..., Any]
) -> None:
    client.setup("1")
    job = client.app.config.staging_directory / "1"
    secret = outside / "secret"
    command = f"echo visible; ln -sf {secret} {job}/stdout; ln -sf {secret} {job}/stderr"
    assert client.submit("1", command).status_int == 200
    final = client.final("1", wait_for)
    assert (job / "stdout").is_symlink()  # the job really did it
    for stream in ("stdout", "stderr"):
        assert "not the job's" not in final[stream]
        assert "symbolic link" in final[stream]


def test_a_linked_return_code_is_not_read(tmp_path: Path, outside: Path) -> None:
    directory = JobDirectory(tmp_path / "job")
    directory.create()
    (outside / "code").write_text("0\n")
    os.symlink(outside / "code", directory.root / "return_code")
    assert directory.return_code() is None
    os.unlink(directory.root / "return_code")
    (directory.root / "return_code").write_text("3\n")
    assert directory.return_code() == 3


def test_a_job_writing_into_its_cached_input_leaves_the_cache_alone(
    make_client: AppFactory, wait_for: Callable[..., Any]
) -> None:
    """As root too: root ignores the read-only mode, so the check is on the bytes themselves."""
    client = make_client(file_cache_dir="cache")
    path = "/galaxy/files/dataset_1.dat"
    assert client("PUT", "/cache", {"path": path}).json is True
    assert client("POST", "/cache", {"path": path}, body=b"original").status_int == 200
    token = client("GET", "/cache/status", {"path": path}).json["token"]
    for job_id in ("1", "2"):
        client.setup(job_id)
        placed = client(
            "POST",
            f"/jobs/{job_id}/files",
            {"type": "input", "name": "d.dat", "cache_token": token},
        )
        assert placed.status_int == 200, placed.text
    first = client.app.config.staging_directory / "1" / "inputs" / "d.dat"
    command = f"chmod u+w {first} && printf tampered > {first}"
    assert client.submit("1", command).status_int == 200
    assert client.final("1", wait_for)["returncode"] == 0
    assert first.read_bytes() == b"tampered"  # the job could write its own copy
    second = client.app.config.staging_directory / "2" / "inputs" / "d.dat"
    assert second.read_bytes() == b"original"
    client.setup("3")
    client("POST", "/jobs/3/files", {"type": "input", "name": "d.dat", "cache_token": token})
    assert (client.app.config.staging_directory / "3" / "inputs" / "d.dat").read_bytes() == (
        b"original"
    )


def test_names_through_a_file_or_ending_in_a_directory(client: Client) -> None:
    job = prepared_job(client)
    os.symlink("../working/sub", job / "outputs" / "dirlink")
    download = {"type": "output_workdir", "name": "sub/secret/deeper"}
    assert_error(client("GET", "/jobs/1/files", download), 400, "not a directory")
    assert_error(
        client("GET", "/jobs/1/files", {"type": "output", "name": "dirlink"}), 404, "directory"
    )
    assert_error(
        client("POST", "/jobs/1/files", {"type": "workdir", "name": "sub/secret/x"}, body=b"x"), 400
    )


def test_a_fifo_the_job_leaves_is_refused_without_blocking(client: Client) -> None:
    """Opening a FIFO for reading would wait for a writer forever: it is refused at once."""
    job = prepared_job(client)
    os.mkfifo(job / "outputs" / "pipe")
    os.mkfifo(job / "stdout")
    assert_error(client("GET", "/jobs/1/files", {"type": "output", "name": "pipe"}), 404)
    assert "not a regular file" in (JobDirectory(job).read_text("stdout") or "")
