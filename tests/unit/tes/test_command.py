"""The executors' command line and the container path mapping, run for real in bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lwr.errors import LwrError
from lwr.tes import paths
from lwr.tes.command import command_line, container_argv
from lwr.tes.models import parse_task


def run(task: dict, tmp_path: Path) -> tuple[int, Path, Path]:
    root, logs = tmp_path / "working", tmp_path / "metadata" / "tes"
    root.mkdir()
    script = command_line(parse_task(task), root, logs)
    done = subprocess.run(["bash", "-c", script], cwd=root, check=False)
    return done.returncode, root, logs


def test_rewrites_declared_paths_only_at_name_boundaries(tmp_path: Path) -> None:
    rewrite = paths.rewriter(tmp_path, ["/data", "/data/in.txt"])
    assert rewrite("cat /data/in.txt /database x=/data/y") == (
        f"cat {tmp_path}/data/in.txt /database x={tmp_path}/data/y"
    )
    assert rewrite("/opt/data/z") == "/opt/data/z"


def test_executors_in_order_with_streams_env_workdir_and_errors(tmp_path: Path) -> None:
    task = {
        "volumes": ["/v"],
        "executors": [
            {
                "image": "i",
                "command": ["sh", "-c", 'pwd; echo "$X" > /v/x'],
                "workdir": "/w",
                "env": {"X": "$(touch /tmp/never) /v"},
            },
            {"image": "i", "command": ["cat"], "stdin": "/v/x", "stdout": "/o/out"},
            {"image": "i", "command": ["sh", "-c", "exit 4"], "ignore_error": True},
            {"image": "i", "command": ["sh", "-c", "echo bad >&2; exit 6"]},
            {"image": "i", "command": ["touch", "/v/after"]},
        ],
    }
    code, root, logs = run(task, tmp_path)
    assert code == 6
    assert (logs / "0.stdout").read_text() == f"{root}/w\n"
    # the value reached the command literally (never expanded), its declared path rewritten
    assert (root / "o" / "out").read_text() == f"$(touch /tmp/never) {root}/v\n"
    assert [(logs / f"{i}.exit_code").read_text() for i in range(4)] == ["0\n", "0\n", "4\n", "6\n"]
    assert (logs / "3.stderr").read_text() == "bad\n"
    assert not (logs / "4.start").exists() and not (root / "v" / "after").exists()


def test_container_paths_cannot_climb_out(tmp_path: Path) -> None:
    with pytest.raises(LwrError):
        paths.host_path(tmp_path, "/a/../../etc/passwd")
    assert paths.host_path(tmp_path, "/a/b") == tmp_path / "a" / "b"


def test_container_runtimes_bind_the_declared_top_directories(tmp_path: Path) -> None:
    task = parse_task(
        {
            "inputs": [{"path": "/data/in", "content": "x"}],
            "volumes": ["/scratch"],
            "executors": [
                {"image": "alpine:3", "command": ["ls"], "workdir": "/data", "env": {"A": "b"}}
            ],
        }
    )
    argv = container_argv("docker", task, task.executors[0], tmp_path)
    assert argv == [
        "docker",
        "run",
        "--rm",
        "-i",
        "-v",
        f"{tmp_path}/data:/data",
        "-v",
        f"{tmp_path}/scratch:/scratch",
        "-w",
        "/data",
        "-e",
        "A=b",
        "alpine:3",
        "ls",
    ]
    apptainer = container_argv("apptainer", task, task.executors[0], tmp_path)
    assert apptainer[:2] == ["apptainer", "exec"] and "docker://alpine:3" in apptainer
