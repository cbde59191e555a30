"""The job script: rendering, and what running it really records in the job directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from string import Template

import pytest

from lwr.errors import InvalidRequestError
from lwr.managers import launcher, script
from lwr.managers.directory import JobDirectory


@pytest.fixture
def job(tmp_path: Path) -> JobDirectory:
    directory = JobDirectory(tmp_path / "job dir with spaces" / "7")
    directory.create()
    return directory


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(params=["bash", "python"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Write the job and run it the way the local backend does, with each launcher.

    ``bash`` runs ``job.sh``; ``python`` runs ``job.json`` with the python launcher (what a
    server without bash uses), so every behaviour below is checked for both.
    """
    launcher_name = request.param

    def run_job(
        job: JobDirectory, command_line: str, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        text = script.render(job, "7", 1, command_line, **kwargs)  # type: ignore[arg-type]
        path = script.write(job, text)
        launcher.write_spec(job, "7", 1, command_line, **kwargs)  # type: ignore[arg-type]
        env = {k: v for k, v in os.environ.items() if k not in ("TMPDIR", "TMP", "TEMP")}
        if launcher_name == "bash":
            argv = ["bash", str(path)]
        else:
            argv = [sys.executable, "-I", "-m", launcher.PYTHON_LAUNCHER_MODULE, str(job.root)]
        return subprocess.run(
            argv, cwd=job.root, capture_output=True, text=True, timeout=30, env=env
        )

    return run_job


def test_records_stdout_stderr_and_return_code(job: JobDirectory, run: Runner) -> None:
    result = run(job, "echo out; echo err >&2")
    assert result.returncode == 0
    assert (job.root / "stdout").read_text() == "out\n"
    assert (job.root / "stderr").read_text() == "err\n"
    assert job.return_code() == 0
    assert not (job.root / "return_code.tmp").exists()


def test_exit_code_of_the_command_is_recorded(job: JobDirectory, run: Runner) -> None:
    result = run(job, "echo before; exit 3; echo after")
    assert result.returncode == 0  # the script itself succeeds: the result is in the file
    assert job.return_code() == 3
    assert (job.root / "stdout").read_text() == "before\n"


def test_command_runs_in_the_working_directory_with_galaxy_variables(
    job: JobDirectory, run: Runner
) -> None:
    run(
        job,
        'pwd > here.txt; echo "$_GALAXY_JOB_TMP_DIR" > tmp.txt;'
        ' echo "$_GALAXY_JOB_HOME_DIR" > home.txt; echo "$TMPDIR" > tmpdir.txt;'
        ' test -d "$_GALAXY_JOB_TMP_DIR" && test -d "$_GALAXY_JOB_HOME_DIR"',
    )
    working = job.sub("working")
    assert job.return_code() == 0
    assert (working / "here.txt").read_text().strip() == str(working)
    assert (working / "tmp.txt").read_text().strip() == str(job.sub("tmp"))
    assert (working / "home.txt").read_text().strip() == str(job.sub("home"))
    assert (working / "tmpdir.txt").read_text().strip() == str(job.sub("tmp"))


def test_missing_home_and_tmp_are_created(job: JobDirectory, run: Runner) -> None:
    job.sub("home").rmdir()
    job.sub("tmp").rmdir()
    run(job, "true")
    assert job.sub("home").is_dir() and job.sub("tmp").is_dir()


def test_missing_working_directory_records_127(job: JobDirectory, run: Runner) -> None:
    job.sub("working").rmdir()
    run(job, "echo should not run")
    assert job.return_code() == 127
    assert not (job.root / "stdout").exists()


def test_a_stale_return_code_is_removed_first(job: JobDirectory) -> None:
    """A rerun must not look finished because of the previous attempt's file."""
    (job.root / "return_code").write_text("0\n")
    text = script.render(job, "7", 2, "sleep 30")
    path = script.write(job, text)
    proc = subprocess.Popen(["bash", str(path)], cwd=job.root, start_new_session=True)
    try:
        for _ in range(200):
            if not (job.root / "return_code").exists():
                break
            subprocess.run(["sleep", "0.02"], check=True)
        assert not (job.root / "return_code").exists()
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_environment_quoted_and_raw(job: JobDirectory, run: Runner) -> None:
    env = [
        {"name": "PLAIN", "value": "a b $HOME `id` ; rm -rf /"},
        {"name": "EXPANDED", "value": "$LWR_BASE:/extra", "raw": True},
        {"name": "LWR_BASE", "value": "/base"},
        {"name": "EMPTY", "value": None},
    ]
    # EXPANDED is set before LWR_BASE exists: raw values expand at that point of the script
    run(job, 'printf "%s\\n" "$PLAIN" "$EXPANDED" "$LWR_BASE" "[$EMPTY]"', env=env)
    lines = (job.root / "stdout").read_text().splitlines()
    assert lines == ["a b $HOME `id` ; rm -rf /", ":/extra", "/base", "[]"]


def test_raw_environment_expands(job: JobDirectory, run: Runner) -> None:
    env = [{"name": "MYPATH", "value": "$_GALAXY_JOB_DIR/bin", "raw": True}]
    run(job, 'echo "$MYPATH"', env=env)
    assert (job.root / "stdout").read_text().strip() == f"{job.sub('working')}/bin"


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "A;rm -rf /", "", "A=B", "$(id)"])
def test_invalid_environment_names_are_refused(job: JobDirectory, name: str) -> None:
    with pytest.raises(InvalidRequestError, match="invalid environment variable name"):
        script.render(job, "7", 1, "true", env=[{"name": name, "value": "x"}])


@pytest.mark.parametrize("entry", [{"value": "x"}, "NAME=x", ["NAME", "x"]])
def test_malformed_environment_entries_are_refused(job: JobDirectory, entry: object) -> None:
    with pytest.raises(InvalidRequestError):
        script.render(job, "7", 1, "true", env=[entry])  # type: ignore[list-item]


def test_dependencies_are_sourced_before_the_command(
    job: JobDirectory, tmp_path: Path, run: Runner
) -> None:
    env_sh = tmp_path / "deps" / "sam tools" / "1.9" / "env.sh"
    env_sh.parent.mkdir(parents=True)
    env_sh.write_text(
        'SAMTOOLS_VERSION=1.9; export SAMTOOLS_VERSION\nPATH="/opt/samtools/bin:$PATH"\n'
    )
    run(job, 'echo "$SAMTOOLS_VERSION"; echo "$PATH" | cut -d: -f1', dependency_files=[env_sh])
    assert (job.root / "stdout").read_text().splitlines() == ["1.9", "/opt/samtools/bin"]


@pytest.mark.parametrize("command", ["", "   ", "\n"])
def test_empty_command_is_refused(job: JobDirectory, command: str) -> None:
    with pytest.raises(InvalidRequestError, match="command_line"):
        script.render(job, "7", 1, command)


def test_dollars_in_the_command_are_left_for_the_shell(job: JobDirectory, run: Runner) -> None:
    """The command is a value, not part of the template: $job_id and ${x} stay as written."""
    text = script.render(job, "7", 1, "echo '$job_id' '${command_line}' $$ > /dev/null; echo ok")
    assert "echo '$job_id' '${command_line}' $$ > /dev/null; echo ok" in text
    run(job, "echo '$job_id'")
    assert (job.root / "stdout").read_text() == "$job_id\n"


def test_every_template_placeholder_is_filled() -> None:
    """A missing key must raise, never leave a half-rendered script (substitute, not safe_)."""
    identifiers = {
        m.group("named") or m.group("braced")
        for m in Template.pattern.finditer(script.TEMPLATE.template)
        if m.group("named") or m.group("braced")
    }
    assert {"command_line", "job_directory", "return_code_name", "environment"} <= identifiers
    values = dict.fromkeys(identifiers, "x")
    values.pop("command_line")
    with pytest.raises(KeyError):
        script.TEMPLATE.substitute(values)


def test_rendered_script_has_no_leftover_placeholders(job: JobDirectory) -> None:
    text = script.render(job, "7", 1, "true")
    for name in (
        "$job_directory",
        "$command_line",
        "$return_code_name",
        "$environment",
        "$dependencies",
    ):
        assert name not in text
    assert "attempt 1" in text


def test_write_is_executable_and_atomic(job: JobDirectory) -> None:
    path = script.write(job, "#!/bin/bash\necho hi\n")
    assert path == job.root / "job.sh"
    assert path.stat().st_mode & stat.S_IXUSR
    assert not path.with_name("job.sh.tmp").exists()
    path2 = script.write(job, "#!/bin/bash\necho second\n")
    assert path2.read_text() == "#!/bin/bash\necho second\n"


def test_the_job_directory_token_becomes_the_job_directory(job: JobDirectory, run: Runner) -> None:
    (job.root / "marker").write_text("found\n")
    result = run(
        job, f'cat "{script.JOB_DIRECTORY_TOKEN}/marker"; echo {script.JOB_DIRECTORY_TOKEN}'
    )
    assert result.returncode == 0
    assert job.return_code() == 0
    assert (job.root / "stdout").read_text() == f"found\n{os.path.abspath(job.root)}\n"


def test_the_retired_jobs_directory_token_is_refused(job: JobDirectory) -> None:
    with pytest.raises(InvalidRequestError, match="jobs_directory"):
        script.render(job, "7", 1, f"ls {script.JOBS_DIRECTORY_TOKEN}/x")


def test_a_command_killed_by_a_signal_records_128_plus_the_signal(
    job: JobDirectory, run: Runner
) -> None:
    run(job, "echo before; exec sh -c 'kill -TERM $$'; echo after")
    assert job.return_code() == 143
    assert (job.root / "stdout").read_text() == "before\n"
