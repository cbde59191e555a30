"""The ``lwr`` client commands as a person uses them: the console script against a real server.

Each test runs the installed ``lwr`` program as a subprocess (``submit``, ``status``, ``cancel``,
``list``, ``clean``) against LWR started with ``paster serve``, with the client's remembered jobs
in a directory of the test's own (``LWR_CLIENT_STATE_DIR``). What the server did is read from the
server itself (its status answers and its log), not from what the client says it did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.files_endpoint import wait_for
from tests.integration.server import BIN, LwrServer

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "LWR_CLIENT_STATE_DIR": str(tmp_path / "state")}


def lwr(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "lwr"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


@contextmanager
def sigint_as_in_a_terminal() -> Iterator[None]:
    """Children started inside get SIGINT's default action, as a program run in a terminal does.

    A suite started in the background of a non-interactive shell (``.ci/run &``, a CI runner)
    inherits SIGINT *ignored*, and an ignored signal stays ignored across exec: Python then
    installs no KeyboardInterrupt handler and a Ctrl-C sent to ``lwr submit`` is dropped by the
    kernel (the client honours the ignore, as every program should). A handler of ours is reset
    to the default at exec, so the child sees what a person's shell would give it.
    """
    before = signal.getsignal(signal.SIGINT)
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if before is signal.SIG_IGN:
            signal.signal(signal.SIGINT, before)


def start_submit(
    env: dict[str, str], cwd: Path, server: LwrServer, job_id: str, *extra: str
) -> subprocess.Popen[str]:
    """``lwr submit`` of a 60-second job, left running, interruptible as in a terminal."""
    argv = [str(BIN / "lwr"), "submit", "--url", server.url, "--job-id", job_id, *extra]
    with sigint_as_in_a_terminal():
        return subprocess.Popen(
            [*argv, "--", "sleep 60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )


def server_status(server: LwrServer, job_id: str) -> dict[str, object]:
    code, answer = server.get(f"jobs/{job_id}/status", job_id=job_id)
    assert code == 200, answer
    assert isinstance(answer, dict)
    return answer


def running(server: LwrServer, job_id: str) -> bool:
    return server_status(server, job_id)["status"] == "running"


def gone(server: LwrServer, job_id: str) -> bool:
    """The server no longer has the job (it answers ``lost`` for unknown jobs, as Pulsar does)."""
    answer = server_status(server, job_id)
    return answer["status"] == "lost" and "unknown job" in str(answer.get("reason"))


def test_ctrl_c_cancels_and_cleans_the_job(
    lwr_server: LwrServer, tmp_path: Path, env: dict[str, str]
) -> None:
    submit = start_submit(env, tmp_path, lwr_server, "interrupted-1")
    wait_for(lambda: running(lwr_server, "interrupted-1"), what="the job to run")
    submit.send_signal(signal.SIGINT)
    _out, err = submit.communicate(timeout=60)
    assert submit.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted; job interrupted-1: cancelled, cleaned" in err
    assert gone(lwr_server, "interrupted-1")
    assert "job _default_/interrupted-1: cancelled (killed)" in lwr_server.log()
    assert "job _default_/interrupted-1: cleaned" in lwr_server.log()
    listed = lwr(env, tmp_path, "list")
    assert "no jobs remembered" in listed.stdout, listed.stdout


def test_timeout_cancels_and_cleans_the_job(
    lwr_server: LwrServer, tmp_path: Path, env: dict[str, str]
) -> None:
    started = time.monotonic()
    done = lwr(
        env, tmp_path, "submit", "--url", lwr_server.url, "--job-id", "slow-1", "--timeout", "3",
        "--", "sleep 60",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 124, done.stderr
    assert elapsed >= 3.0, "gave up before the timeout"
    assert "job 'slow-1' not finished after 3s" in done.stderr
    assert "job slow-1: cancelled, cleaned" in done.stderr
    assert "Traceback" not in done.stderr
    assert gone(lwr_server, "slow-1")
    assert "job _default_/slow-1: cancelled (killed)" in lwr_server.log()


def test_a_missing_output_fails_and_is_named(
    lwr_server: LwrServer, tmp_path: Path, env: dict[str, str]
) -> None:
    args = ["submit", "--url", lwr_server.url, "--output", "never.txt", "--output", "made.txt"]
    done = lwr(env, tmp_path, *args, "--", "echo hi > made.txt; echo hi")
    assert done.returncode == 125, done.stderr
    assert done.stdout == "hi\n"
    assert "output 'never.txt' was not produced by the job" in done.stderr
    assert "made.txt" not in done.stderr
    assert (tmp_path / "made.txt").read_text() == "hi\n"
    # the job's own failure keeps its return code; the missing output is still named
    failed = lwr(env, tmp_path, *args, "--", "exit 3")
    assert failed.returncode == 3, failed.stderr
    assert "output 'never.txt' was not produced by the job" in failed.stderr


def test_status_cancel_list_and_clean(
    lwr_server: LwrServer, tmp_path: Path, env: dict[str, str]
) -> None:
    submit = start_submit(env, tmp_path, lwr_server, "kept-1", "--keep")
    try:
        wait_for(lambda: running(lwr_server, "kept-1"), what="the job to run")
        listed = lwr(env, tmp_path, "list")
        line = next(line for line in listed.stdout.splitlines() if line.startswith("kept-1 "))
        assert "running" in line and lwr_server.url in line and "sleep 60" in line
        assert lwr(env, tmp_path, "status", "kept-1").stdout.startswith("kept-1: running (")
        cancelled = lwr(env, tmp_path, "cancel", "kept-1")
        assert cancelled.returncode == 0 and "kept-1: cancelled (was running)" in cancelled.stdout
        _out, err = submit.communicate(timeout=60)
    finally:
        if submit.poll() is None:
            submit.kill()
    assert submit.returncode == 125, err
    assert "job kept-1: job ended cancelled" in err
    assert server_status(lwr_server, "kept-1")["status"] == "cancelled"  # --keep: still there
    shown = lwr(env, tmp_path, "status", "kept-1", "--json")
    assert json.loads(shown.stdout)["status"] == "cancelled"
    again = lwr(env, tmp_path, "cancel", "kept-1")
    assert "already cancelled; nothing to cancel" in again.stdout
    cleaned = lwr(env, tmp_path, "clean", "kept-1")
    assert cleaned.returncode == 0 and cleaned.stdout == "kept-1: cleaned\n"
    assert gone(lwr_server, "kept-1")
    assert "no jobs remembered" in lwr(env, tmp_path, "list").stdout
    # forgotten here: the id alone no longer finds it; with --url the server says it is gone
    unknown = lwr(env, tmp_path, "status", "kept-1")
    assert unknown.returncode == 1 and "give the server with --url" in unknown.stderr
    asked = lwr(env, tmp_path, "status", "kept-1", "--url", lwr_server.url)
    assert asked.returncode == 1 and "not on the server" in asked.stdout
