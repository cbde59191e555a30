"""RemoteStager against a real job directory and a real files endpoint (an HTTP server thread)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lwr.errors import StagingError
from lwr.managers.directory import JobDirectory
from lwr.staging.movers import ClientFile, Mover, StagingSettings
from lwr.staging.remote import RemoteStager
from lwr.staging.rules import load_rules
from lwr.staging.transfer import RetryPolicy
from tests.integration.files_endpoint import FilesEndpoint

FAST = RetryPolicy(retries=1, delay=0.01, timeout=5)


@pytest.fixture
def endpoint() -> Iterator[FilesEndpoint]:
    with FilesEndpoint(job_key="k3y") as running:
        yield running


@pytest.fixture
def job(tmp_path: Path) -> JobDirectory:
    directory = JobDirectory(tmp_path / "job")
    directory.create()
    return directory


@pytest.fixture
def galaxy(tmp_path: Path) -> Path:
    root = tmp_path / "galaxy"
    (root / "working").mkdir(parents=True)
    (root / "metadata").mkdir()
    return root


def mapper(endpoint: FilesEndpoint, default: str = "remote_transfer", **extra: Any) -> dict:
    return {"default_action": default, "files_endpoint": endpoint.url, "paths": [], **extra}


def entry(name: str, kind: str, action: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "type": kind, "action": action}


def transfer(endpoint: FilesEndpoint, path: Path, kind: str) -> dict[str, Any]:
    url = load_rules(mapper(endpoint)).url_for(str(path), kind)
    return {
        "action_type": "remote_transfer",
        "source": {"path": str(path)},
        "path": str(path),
        "url": url,
    }


# -- stage in ---------------------------------------------------------------------------------


def test_stage_in_performs_every_setup_entry(
    endpoint: FilesEndpoint, job: JobDirectory, galaxy: Path, tmp_path: Path
) -> None:
    data = galaxy / "dataset_1.dat"
    data.write_text("input data")
    extra = galaxy / "dataset_1_files" / "sub" / "extra"
    extra.parent.mkdir(parents=True)
    extra.write_text("extra")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "ref.fa").write_text("ACGT")
    launch = {
        "remote_staging": {
            "setup": [
                entry("dataset_1.dat", "input", transfer(endpoint, data, "input")),
                entry("dataset_1_files/sub/extra", "input", transfer(endpoint, extra, "input")),
                entry("config.txt", "config", {"action_type": "message", "contents": "cfg ✓"}),
                entry(
                    "ref.fa",
                    "unstructured",
                    {"action_type": "remote_copy", "source": {"path": str(shared / "ref.fa")}},
                ),
            ]
        }
    }
    stager = RemoteStager(FAST, remote_copy_allowed_paths=[shared])
    assert stager.needs_stage_in(launch)
    for _ in range(2):  # idempotent: a second run (after a restart) gives the same result
        stager.stage_in(launch, job)
        assert (job.sub("inputs") / "dataset_1.dat").read_text() == "input data"
        assert (job.sub("inputs") / "dataset_1_files/sub/extra").read_text() == "extra"
        assert (job.sub("configs") / "config.txt").read_text(encoding="utf-8") == "cfg ✓"
        assert (job.sub("unstructured") / "ref.fa").read_text() == "ACGT"
    assert endpoint.served("GET").count(str(data)) == 2


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        (entry("../../escape", "input", {"action_type": "message", "contents": ""}), "'..'"),
        (entry("/etc/x", "input", {"action_type": "message", "contents": ""}), "absolute"),
        (entry("x", "bogus", {"action_type": "message", "contents": ""}), "unknown file type"),
        (
            entry("x", "input", {"action_type": "remote_teleport", "path": "/x"}),
            "not supported",
        ),
        (
            entry("x", "input", {"action_type": "remote_scp_transfer", "path": "/x"}),
            "needs ssh_host",
        ),
        (
            entry(
                "x",
                "input",
                {"action_type": "remote_rsync_transfer", "path": "/x", "ssh_host": "-oProxy=x"},
            ),
            "needs ssh_key",
        ),
        (
            entry(
                "x",
                "input",
                {
                    "action_type": "remote_rsync_transfer",
                    "path": "/x",
                    "ssh_host": "-oProxyCommand=x",
                    "ssh_key": "k",
                },
            ),
            "not a valid name",
        ),
        (entry("x", "input", {"action_type": "remote_transfer"}), "no 'url'"),
        ({"name": "x"}, "not a mapping with an 'action'"),
    ],
)
def test_stage_in_refuses_bad_entries(job: JobDirectory, bad: Any, complaint: str) -> None:
    with pytest.raises(StagingError, match=complaint):
        RemoteStager(FAST).stage_in({"remote_staging": {"setup": [bad]}}, job)
    assert not (job.root.parent / "escape").exists()


def test_remote_copy_is_refused_unless_the_admin_allows_the_directory(
    job: JobDirectory, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    (tmp_path / "allowed").mkdir()
    link = tmp_path / "allowed" / "sneaky"
    link.symlink_to(secret)
    for allowed, source in (((), secret), ([tmp_path / "allowed"], link)):
        setup = [
            entry("x", "input", {"action_type": "remote_copy", "source": {"path": str(source)}})
        ]
        with pytest.raises(StagingError, match="outside the allowed directories"):
            RemoteStager(FAST, allowed).stage_in({"remote_staging": {"setup": setup}}, job)
    assert not (job.sub("inputs") / "x").exists()


def test_failed_fetch_names_the_file(endpoint: FilesEndpoint, job: JobDirectory, galaxy: Path):
    data = galaxy / "dataset_2.dat"
    data.write_text("x")
    endpoint.fail(data, 500, "drop")
    setup = [entry("dataset_2.dat", "input", transfer(endpoint, data, "input"))]
    with pytest.raises(StagingError) as caught:
        RemoteStager(FAST).stage_in({"remote_staging": {"setup": setup}}, job)
    assert "dataset_2.dat" in caught.value.message and "k3y" not in caught.value.message
    assert not (job.sub("inputs") / "dataset_2.dat").exists()


def test_nothing_to_do_without_remote_work(endpoint: FilesEndpoint) -> None:
    stager = RemoteStager(FAST)
    assert not stager.needs_stage_in({})
    assert not stager.needs_stage_in({"remote_staging": {"setup": []}})
    local = {
        "remote_staging": {
            "action_mapper": mapper(endpoint, "transfer"),
            "client_outputs": {"output_files": []},
        }
    }
    assert not stager.needs_stage_out(local)
    remote = {
        "remote_staging": {
            "action_mapper": mapper(endpoint),
            "client_outputs": {"output_files": []},
        }
    }
    assert stager.needs_stage_out(remote)
    inputs_only = mapper(
        endpoint,
        "transfer",
        paths=[{"path": "/", "action": "remote_transfer", "path_types": "input"}],
    )
    launch = {"remote_staging": {"action_mapper": inputs_only, "client_outputs": {}}}
    assert not stager.needs_stage_out(launch)
    launch["remote_staging"]["client_outputs"] = {"output_files": ["/g/x"]}
    assert not stager.needs_stage_out(launch)


# -- stage out --------------------------------------------------------------------------------


def status_of(job: JobDirectory, sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the completion dictionary reports (listings from the real directory)."""
    realized = []
    for source in sources or []:
        path = job.sub("working") / source["path"]
        if path.exists():
            realized.append({**source, "contents": path.read_text()})
    return {
        "working_directory_contents": job.contents("working"),
        "outputs_directory_contents": job.contents("outputs"),
        "metadata_directory_contents": job.contents("metadata"),
        "job_directory_contents": job.top_level_files(),
        "realized_dynamic_file_sources": realized,
    }


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_stage_out_sends_what_the_client_would_collect(
    endpoint: FilesEndpoint, job: JobDirectory, galaxy: Path, tmp_path: Path
) -> None:
    copies = tmp_path / "copies"
    out1, out2, out3 = galaxy / "dataset_1.dat", galaxy / "dataset_2.dat", copies / "dataset_3.dat"
    from_work, version = galaxy / "dataset_9.dat", galaxy / "GALAXY_VERSION"
    write(job.sub("outputs") / "dataset_1.dat", "one")
    write(job.sub("outputs") / "dataset_1_files" / "sub" / "extra", "extra")
    write(job.sub("outputs") / "dataset_2.dat", "two")
    write(job.sub("outputs") / "dataset_3.dat", "three")
    write(job.sub("outputs") / "COMMAND_VERSION", "1.0")
    write(job.sub("working") / "result.txt", "from workdir")
    write(job.sub("working") / "galaxy.json", json.dumps([{"filename": "found"}]))
    write(job.sub("working") / "found", "dynamic")
    write(job.sub("working") / "ignored.tmp", "not collected")
    write(job.sub("metadata") / "metadata_out", "meta")
    sources = [{"type": "galaxy", "path": "galaxy.json"}]
    rules = mapper(
        endpoint,
        paths=[
            {"path": str(out2), "path_types": "output", "action": "transfer"},
            {"path": str(copies), "path_types": "output", "action": "remote_copy"},
        ],
    )
    launch = {
        "remote_staging": {
            "action_mapper": rules,
            "client_outputs": {
                "working_directory": str(galaxy / "working"),
                "metadata_directory": str(galaxy / "metadata"),
                "work_dir_outputs": [[str(galaxy / "working" / "result.txt"), str(from_work)]],
                "output_files": [str(out1), str(out2), str(out3), str(from_work)],
                "version_file": str(version),
                "dynamic_outputs": [r"primary_.*|galaxy.json|metadata_.*"],
                "dynamic_file_sources": sources,
            },
        }
    }
    stager = RemoteStager(FAST, remote_copy_allowed_paths=[copies])
    for _ in range(2):  # idempotent
        stager.stage_out(launch, job, status_of(job, sources))
    assert out1.read_text() == "one"
    assert (galaxy / "dataset_1_files" / "sub" / "extra").read_text() == "extra"
    assert not out2.exists()  # "transfer": the client downloads it itself
    assert out3.read_text() == "three"  # remote_copy
    assert from_work.read_text() == "from workdir"
    assert version.read_text() == "1.0"
    assert (galaxy / "working" / "galaxy.json").exists()
    assert (galaxy / "working" / "found").read_text() == "dynamic"
    assert not (galaxy / "working" / "ignored.tmp").exists()
    assert (galaxy / "metadata" / "metadata_out").read_text() == "meta"
    assert ("POST", "output_metadata") in endpoint.kinds()


def test_missing_outputs_fail_naming_them(
    endpoint: FilesEndpoint, job: JobDirectory, galaxy: Path
) -> None:
    write(job.sub("outputs") / "dataset_1.dat", "one")
    missing = [str(galaxy / "dataset_2.dat"), str(galaxy / "dataset_3.dat")]
    launch = {
        "remote_staging": {
            "action_mapper": mapper(endpoint),
            "client_outputs": {"output_files": [str(galaxy / "dataset_1.dat"), *missing]},
        }
    }
    with pytest.raises(StagingError) as caught:
        RemoteStager(FAST).stage_out(launch, job, status_of(job))
    assert f"not produced: {missing[0]}, {missing[1]}" in caught.value.message
    assert (galaxy / "dataset_1.dat").read_text() == "one"  # the rest was still sent


def test_refused_upload_and_symlinked_output_fail(
    endpoint: FilesEndpoint, job: JobDirectory, galaxy: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("s3cret")
    os.symlink(tmp_path / "secret", job.sub("outputs") / "dataset_1.dat")
    write(job.sub("outputs") / "dataset_2.dat", "two")
    endpoint.fail(galaxy / "dataset_2.dat", 403)
    launch = {
        "remote_staging": {
            "action_mapper": mapper(endpoint),
            "client_outputs": {
                "output_files": [str(galaxy / "dataset_1.dat"), str(galaxy / "dataset_2.dat")]
            },
        }
    }
    with pytest.raises(StagingError) as caught:
        RemoteStager(FAST).stage_out(launch, job, status_of(job))
    assert "leads outside the job directory" in caught.value.message
    assert "dataset_2.dat" in caught.value.message and "HTTP 403" in caught.value.message
    assert not (galaxy / "dataset_1.dat").exists()


def test_malformed_client_rules_fail_the_stage(job: JobDirectory) -> None:
    launch = {
        "remote_staging": {
            "action_mapper": {"paths": [{"action": "warp"}]},
            "client_outputs": {"output_files": []},
        }
    }
    stager = RemoteStager(FAST)
    assert stager.needs_stage_out(launch)
    with pytest.raises(Exception, match="rule 0: unknown action 'warp'"):
        stager.stage_out(launch, job, status_of(job))


# -- options handed to each action's mover ----------------------------------------------------


class Recorder(Mover):
    """A mover that keeps what it was asked to move (the real ones have their own tests)."""

    action_type = "remote_scp_transfer"

    def __init__(self) -> None:
        super().__init__(StagingSettings())
        self.calls: list[tuple[str, ClientFile]] = []

    def fetch(self, file: ClientFile, target: Path) -> None:
        self.calls.append(("fetch", file))
        target.write_text("fetched")

    def send(self, source: Path, file: ClientFile) -> None:
        self.calls.append(("send", file))


def test_ssh_options_come_from_the_action_the_rule_and_the_destination(
    job: JobDirectory, galaxy: Path
) -> None:
    """As Galaxy's client and Pulsar resolve them: the key is sent once beside the mapper (and
    at its top), a rule's own settings beat the destination's, the action's resolved ones win."""
    rules = {
        "default_action": "remote_scp_transfer",
        "ssh_user": "galaxy",
        "ssh_host": "gx.example.org",
        "ssh_port": 22,
        "ssh_key": "TOP KEY",
        "paths": [
            {"path": str(galaxy / "special"), "action": "remote_scp_transfer", "ssh_port": 2200},
        ],
    }
    source = {"path": str(galaxy / "special" / "in.dat")}
    action = {"action_type": "remote_scp_transfer", "source": source, "ssh_host": "other.org"}
    output = galaxy / "dataset_3.dat"
    write(job.sub("outputs") / "dataset_3.dat", "out")
    launch = {
        "remote_staging": {
            "setup": [entry("in.dat", "input", action)],
            "action_mapper": rules,
            "ssh_key": "SIDE KEY",
            "client_outputs": {"output_files": [str(output)]},
        }
    }
    stager = RemoteStager(FAST)
    recorder = stager._movers["remote_scp_transfer"] = Recorder()
    stager.stage_in(launch, job)
    stager.stage_out(launch, job, status_of(job))
    (_, fetched), (_, sent) = recorder.calls
    assert fetched.path == source["path"] and fetched.file_type == "input"
    assert {k: fetched.param(k) for k in ("ssh_user", "ssh_host", "ssh_port", "ssh_key")} == {
        "ssh_user": "galaxy",
        "ssh_host": "other.org",
        "ssh_port": "2200",
        "ssh_key": "TOP KEY",
    }
    assert sent.path == str(output) and sent.param("ssh_port") == 22
    assert sent.param("url") is None  # no files_endpoint, no URL
    launch["remote_staging"]["action_mapper"] = {**rules, "ssh_key": None}
    stager.stage_in(launch, job)
    assert recorder.calls[-1][1].param("ssh_key") == "SIDE KEY"
