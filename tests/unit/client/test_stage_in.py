"""Which files staging in sends, under which names and actions, and how paths are rewritten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lwr.client.actions import ClientActions
from lwr.client.job import ExpectedOutputs, InputFile, JobDescription
from lwr.client.stage_in import StagedJob, StageIn
from tests.unit.client.fakes import FakeJobClient


def make_files(root: Path) -> dict[str, str]:
    files = {
        "t/run.py": "print(1)",
        "t/sub/helper.R": "x",
        "d/dataset_0.dat": "in",
        "d/dataset_0_files/sub/extra": "extra",
        "d/meta/m.dat": "meta",
        "d/unused.dat": "never referenced",
        "w/config.txt": f"input={root}/d/dataset_0.dat\n",
        "m/meta_in": "m",
        "idx/bwa/h.fa": "A",
        "idx/bwa/h.fa.fai": "A",
        "idx/seq/all.fa": "A",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return {name: str(root / name) for name in files}


def description(root: Path, f: dict[str, str]) -> JobDescription:
    command = (
        f"python {f['t/run.py']} {f['w/config.txt']} {f['d/dataset_0_files/sub/extra']} "
        f"{f['d/meta/m.dat']} {f['idx/bwa/h.fa']} {root}/out/dataset_1.dat {root}/shared/x "
        f"{root}/fixed/y"
    )
    return JobDescription(
        command_line=command,
        job_id="7",
        inputs=[
            InputFile(f["d/dataset_0.dat"]),
            InputFile(str(root / "d" / "dataset_0_files"), "extra_files"),
            InputFile(f["d/meta/m.dat"], "metadata"),
            InputFile(f["d/unused.dat"]),
        ],
        config_files=[f["w/config.txt"]],
        tool_dir=str(root / "t"),
        tool_files=["sub"],
        working_directory=str(root / "w"),
        metadata_directory=str(root / "m"),
        outputs=ExpectedOutputs(output_files=[f"{root}/out/dataset_1.dat"]),
    )


def rules(root: Path, default: str) -> list[dict[str, Any]]:
    return [
        {"path": f"{root}/idx", "path_types": "unstructured", "depth": 2, "action": default},
        {
            "path": f"{root}/shared",
            "path_types": "unstructured",
            "action": "rewrite",
            "source_directory": f"{root}/shared",
            "destination_directory": "/mnt/shared",
        },
        {"path": f"{root}/fixed", "path_types": "unstructured", "action": "none"},
    ]


def stage(tmp_path: Path, default: str = "transfer", **kw: Any) -> tuple[StagedJob, FakeJobClient]:
    root = tmp_path / "client"
    root.mkdir()
    f = make_files(root)
    fake = FakeJobClient(tmp_path / "server")
    actions = ClientActions.load(default, rules(root, default), **kw)
    stager = StageIn(fake, actions, description(root, f), fake.setup_answer(), tmp_path)  # type: ignore[arg-type]
    return stager.run(), fake


def test_transfer_stages_every_kind(tmp_path: Path) -> None:
    _staged, fake = stage(tmp_path)
    uploads = {(t, n) for verb, t, n in fake.calls if verb == "upload"}
    assert {("tool", "run.py"), ("tool", "sub/helper.R")} <= uploads
    assert {("input", "dataset_0.dat"), ("input", "dataset_0_files/sub/extra")} <= uploads
    assert ("input", "metadata_m.dat") in uploads
    assert ("input", "unused.dat") not in uploads  # not referenced: not sent
    assert {("workdir", "config.txt"), ("metadata", "meta_in"), ("config", "config.txt")} <= uploads
    unstructured = sorted(n.split("/", 1)[1] for t, n in uploads if t == "unstructured")
    assert unstructured == ["bwa/h.fa", "bwa/h.fa.fai", "seq/all.fa"]


def test_command_line_and_config_are_rewritten(tmp_path: Path) -> None:
    staged, _fake = stage(tmp_path)
    server = tmp_path / "server"
    root = tmp_path / "client"
    command = staged.command_line
    assert f"{server}/tool_files/run.py" in command
    assert f"{server}/configs/config.txt" in command
    assert f"{server}/inputs/dataset_0_files/sub/extra" in command
    assert f"{server}/inputs/metadata_m.dat" in command
    assert f"{server}/outputs/dataset_1.dat" in command
    assert f"{server}/unstructured/" in command and "/bwa/h.fa" in command
    assert "/mnt/shared/x" in command  # rewrite rule
    assert f"{root}/fixed/y" in command  # none: untouched
    config = (server / "configs" / "config.txt").read_text()
    assert config == f"input={server}/inputs/dataset_0.dat\n"


def test_none_moves_nothing_but_job_directories(tmp_path: Path) -> None:
    staged, fake = stage(tmp_path, "none")
    kinds = {t for verb, t, n in fake.calls}
    assert kinds <= {"workdir", "metadata"}  # none means copy for the job's own directories
    root = tmp_path / "client"
    assert f"{root}/d/dataset_0_files/sub/extra" in staged.command_line
    assert f"{root}/t/run.py" in staged.command_line


def test_symlink_for_inputs_copy_for_working_files(tmp_path: Path) -> None:
    _staged, fake = stage(tmp_path, "symlink")
    verbs = {(t, v) for v, t, n in fake.calls}
    assert ("input", "symlink") in verbs and ("tool", "symlink") in verbs
    assert ("unstructured", "symlink") in verbs
    assert ("workdir", "copy") in verbs and ("workdir", "symlink") not in verbs
    assert ("config", "upload") in verbs  # rewritten contents always travel


def test_remote_transfer_describes_files_for_the_server(tmp_path: Path) -> None:
    endpoint = "http://galaxy/api/jobs/7/files?job_key=k"
    staged, fake = stage(tmp_path, "remote_transfer", files_endpoint=endpoint)
    assert all(verb == "upload" and t == "config" for verb, t, n in fake.calls)
    entries = {(e["type"], e["name"]): e["action"] for e in staged.setup_entries}
    action = entries[("input", "dataset_0.dat")]
    assert action["action_type"] == "remote_transfer"
    assert action["url"].startswith(endpoint + "&path=")
    assert ("input", "dataset_0_files/sub/extra") in entries
    server = tmp_path / "server"
    assert f"{server}/inputs/dataset_0_files/sub/extra" in staged.command_line
