"""Which outputs stage-out fetches and how, from the expected outputs and the final status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lwr.client.actions import ClientActions
from lwr.client.job import ExpectedOutputs
from lwr.client.stage_out import collect_outputs
from tests.unit.client.fakes import FakeJobClient


def server_files(server: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (server / name).parent.mkdir(parents=True, exist_ok=True)
        (server / name).write_text(text)


def scenario(tmp_path: Path, legacy: bool) -> tuple[FakeJobClient, dict[str, Any], dict[str, Any]]:
    client_root = tmp_path / "client"
    server = tmp_path / "server"
    galaxy_json = (
        '{"filename": "refer1"}\n{"filename": "refer2"}'
        if legacy
        else json.dumps([{"filename": "refer1"}, {"extra_files": "extra_dir"}])
    )
    server_files(
        server,
        {
            "outputs/dataset_1.dat": "out1",
            "outputs/dataset_1_files/sub/extra": "extra",
            "outputs/COMMAND_VERSION": "1.0",
            "working/from_wd": "wd",
            "working/galaxy.json": galaxy_json,
            "working/refer1": "r1",
            "working/refer2": "r2",
            "working/extra_dir/a": "a",
            "working/unrelated": "no",
            "metadata/metadata_out": "m",
        },
    )
    outputs = ExpectedOutputs(
        output_files=[f"{client_root}/dataset_1.dat", f"{client_root}/dataset_2.dat"],
        work_dir_outputs=[
            (f"{client_root}/w/from_wd", f"{client_root}/dataset_77.dat"),
            (f"{client_root}/w/absent", f"{client_root}/dataset_78.dat"),
        ],
        version_file=f"{client_root}/VERSION",
        dynamic_file_sources=[{"type": "legacy_galaxy" if legacy else "galaxy", "path": "x"}],
    )
    wire = outputs.to_wire(f"{client_root}/w", f"{client_root}/m")
    status = {
        "status": "complete",
        "outputs_directory_contents": [
            "dataset_1.dat",
            "dataset_1_files/sub/extra",
            "COMMAND_VERSION",
        ],
        "working_directory_contents": [
            "from_wd",
            "galaxy.json",
            "refer1",
            "refer2",
            "extra_dir/a",
            "unrelated",
        ],
        "metadata_directory_contents": ["metadata_out"],
        "realized_dynamic_file_sources": [
            {"type": "legacy_galaxy" if legacy else "galaxy", "path": "x", "contents": galaxy_json}
        ],
    }
    return FakeJobClient(server), wire, status


def test_transfer_collects_every_kind(tmp_path: Path) -> None:
    fake, wire, status = scenario(tmp_path, legacy=False)
    result = collect_outputs(fake, ClientActions.load(), wire, status)  # type: ignore[arg-type]
    client = tmp_path / "client"
    assert result.ok, result.failures
    assert (client / "dataset_1.dat").read_text() == "out1"
    assert (client / "dataset_1_files" / "sub" / "extra").read_text() == "extra"
    assert (client / "VERSION").read_text() == "1.0"
    assert (client / "dataset_77.dat").read_text() == "wd"
    assert (client / "w" / "galaxy.json").exists()
    assert (client / "w" / "refer1").read_text() == "r1"
    assert (client / "w" / "extra_dir" / "a").read_text() == "a"
    assert not (client / "w" / "unrelated").exists()
    assert (client / "m" / "metadata_out").read_text() == "m"
    assert result.missing == [f"{client}/dataset_2.dat"]
    assert all(verb == "download" for verb, _t, _n in fake.calls)


def test_legacy_galaxy_json_lines(tmp_path: Path) -> None:
    fake, wire, status = scenario(tmp_path, legacy=True)
    result = collect_outputs(fake, ClientActions.load(), wire, status)  # type: ignore[arg-type]
    assert result.ok
    assert (tmp_path / "client" / "w" / "refer2").read_text() == "r2"


def test_actions_decide_who_collects(tmp_path: Path) -> None:
    fake, wire, status = scenario(tmp_path, legacy=False)
    actions = ClientActions.load(
        "copy",
        [{"path_types": "output_metadata", "action": "remote_transfer"}],
        files_endpoint="http://galaxy/files",
    )
    result = collect_outputs(fake, actions, wire, status)  # type: ignore[arg-type]
    assert {verb for verb, _t, _n in fake.calls} == {"copy_out", "download"}
    left = [(o.name, kind) for o, kind in result.left]
    assert left == [("metadata_out", "remote_transfer")]


def test_failures_are_collected_not_raised(tmp_path: Path) -> None:
    fake, wire, status = scenario(tmp_path, legacy=False)
    (tmp_path / "server" / "outputs" / "COMMAND_VERSION").unlink()
    result = collect_outputs(fake, ClientActions.load(), wire, status)  # type: ignore[arg-type]
    assert not result.ok
    assert "COMMAND_VERSION" in result.failures[0]
    assert (tmp_path / "client" / "dataset_1.dat").exists()  # the others still arrived
