"""StatefulManager over real local backends: the whole job life cycle.

Jobs here are real bash processes in ``tmp_path``. Where a test needs a job to stay running, its
command waits for a *gate* file the test creates, so nothing depends on sleeps being long enough.
Backends that fail, recovery after a restart and backend-reported final states are in
test_stateful_failures.py; the shared Harness is in stateful_support.py.
"""

from __future__ import annotations

import pytest

from lwr.errors import InvalidJobStateError, InvalidRequestError, UnknownJobError
from lwr.managers import process
from lwr.managers.base import JobState
from lwr.managers.local import UnqueuedManager
from lwr.managers.stateful import StatefulManager
from lwr.persistence.store import LAUNCHED, PENDING, JobRecord
from tests.unit.managers.stateful_support import (
    Harness,
    WaitFor,
    final,
    gone,
    run_job,
    settle,
    state,
)

# -- the happy path ---------------------------------------------------------------------------


def test_setup_submit_complete(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    record = manager.setup("1", "cat1", "1.0")
    assert (record.state, record.attempt) == (JobState.SETUP, 1)
    assert manager.directory("1").sub("inputs").is_dir()
    assert manager.status("1") == {"complete": "false", "status": "preprocessing", "job_id": "1"}
    (manager.directory("1").sub("inputs") / "in.txt").write_text("input data\n")
    queued = manager.submit(
        "1",
        {"command_line": "cat ../inputs/in.txt; echo err >&2; echo o > ../outputs/out.txt; exit 3"},
    )
    assert queued.state is JobState.QUEUED
    status = final(manager, "1", wait_for)
    assert status["status"] == "complete"
    assert status["returncode"] == 3
    assert status["stdout"] == "input data\n"
    assert status["stderr"] == "err\n"
    assert status["outputs_directory_contents"] == ["out.txt"]
    assert status["job_directory"] == str(harness.staging / "1")
    assert status["attempt"] == 1
    assert status["reason"] is None
    record = manager.record("1")
    assert record.return_code == 3 and record.launch_state == LAUNCHED
    assert "command_line" not in (record.launch or {})  # kept in the script, not the database


def test_tool_streams_from_metadata_are_preferred(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "1", "echo tool-out > ../metadata/tool_stdout; echo job-out")
    assert final(manager, "1", wait_for)["stdout"] == "tool-out\n"


def test_streams_in_status_are_bounded(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "1", "echo FIRST; head -c 100000 /dev/zero | tr '\\0' x; echo; echo LAST")
    stdout = final(manager, "1", wait_for)["stdout"]
    assert len(stdout) <= 4096
    assert stdout.startswith("FIRST") and stdout.rstrip().endswith("LAST")


def test_env_and_dependencies_reach_the_command(harness: Harness, wait_for: WaitFor) -> None:
    env_sh = harness.tmp / "deps" / "bwa" / "0.7" / "env.sh"
    env_sh.parent.mkdir(parents=True)
    env_sh.write_text("BWA=loaded; export BWA\n")
    manager = harness.manager()
    run_job(
        manager,
        "1",
        'echo "$GREETING $BWA"',
        env=[{"name": "GREETING", "value": "hello world"}],
        dependencies_description={
            "requirements": [{"name": "bwa", "version": "0.7", "type": "package"}]
        },
    )
    assert final(manager, "1", wait_for)["stdout"] == "hello world loaded\n"


def test_dynamic_file_sources_are_realized_inside_the_job_only(
    harness: Harness, wait_for: WaitFor
) -> None:
    manager = harness.manager()
    sources = [
        {"path": "galaxy.json", "kind": "x"},
        {"path": "../../../etc/passwd"},
        {"path": "bad\ud800name"},
        {"path": "missing.json"},
        "not a mapping",
    ]
    run_job(manager, "1", "echo '{\"a\": 1}' > galaxy.json", dynamic_file_sources=sources)
    status = final(manager, "1", wait_for)
    assert status["realized_dynamic_file_sources"] == [
        {"path": "galaxy.json", "kind": "x", "contents": '{"a": 1}\n'}
    ]


def test_submit_for_an_unknown_job(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    with pytest.raises(UnknownJobError):
        manager.submit("9", {"command_line": "true"})
    record = manager.submit(
        "9", {"command_line": "true", "setup_params": {"tool_id": "t", "tool_version": "2"}}
    )
    assert record.state is JobState.QUEUED
    assert (record.launch or {})["setup"] == {"tool_id": "t", "tool_version": "2"}
    assert final(manager, "9", wait_for)["returncode"] == 0


def test_submit_without_a_directory_is_refused(harness: Harness) -> None:
    manager = harness.manager()
    manager.setup("1")
    manager.directory("1").delete()
    with pytest.raises(InvalidJobStateError):
        manager.submit("1", {"command_line": "true"})


def test_bad_requests(harness: Harness) -> None:
    manager = harness.manager()
    with pytest.raises(UnknownJobError):
        manager.status("nope")
    with pytest.raises(InvalidRequestError):
        manager.status("../x")
    with pytest.raises(InvalidRequestError):
        manager.setup("a/b")
    manager.setup("1")
    with pytest.raises(InvalidRequestError):
        manager.submit("1", {"command_line": "  "})
    with pytest.raises(InvalidRequestError):
        manager.submit("1", {"command_line": "true", "env": [{"name": "A B", "value": "x"}]})
    assert state(manager, "1") is JobState.SETUP  # nothing was queued by the refused submits


# -- idempotence and attempts -----------------------------------------------------------------


def test_duplicate_submit_runs_the_job_once(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    count = harness.tmp / "count"
    command = f"echo ran >> {count}"
    run_job(manager, "1", command)
    again = manager.submit("1", {"command_line": command})
    assert again.state in (JobState.QUEUED, JobState.RUNNING, JobState.COMPLETE)
    final(manager, "1", wait_for)
    manager.submit("1", {"command_line": command})  # after completion: still ignored
    settle(manager)
    assert count.read_text() == "ran\n"
    assert manager.record("1").attempt == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"env": [{"name": "A B", "value": "x"}]},
        {"env": [{"name": "A", "value": "x", "raw": "false"}]},
        {"dependencies_description": {"requirements": [{"name": "x", "version": ".."}]}},
        {"command_line": "cd __PULSAR_JOBS_DIRECTORY__"},
    ],
)
def test_a_repeated_submit_is_checked_like_the_first(
    harness: Harness, wait_for: WaitFor, bad: dict[str, object]
) -> None:
    """Found by fuzzing: a malformed submit of a job already queued answered 200 (the repeat
    was ignored before anything was checked); the same request is refused in any state."""
    manager = harness.manager()
    run_job(manager, "1", "true")
    with pytest.raises(InvalidRequestError):
        manager.submit("1", {"command_line": "true", **bad})
    final(manager, "1", wait_for)
    with pytest.raises(InvalidRequestError):
        manager.submit("1", {"command_line": "true", **bad})


def test_setup_while_queued_or_running_changes_nothing(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "a", harness.gate("a"))
    run_job(manager, "b", "true")
    wait_for(lambda: state(manager, "a") is JobState.RUNNING, what="a to run")
    for job_id in ("a", "b"):
        (manager.directory(job_id).sub("inputs") / "marker").write_text("keep")
    before = {job_id: manager.record(job_id) for job_id in ("a", "b")}
    for job_id in ("a", "b"):
        after = manager.setup(job_id, "other_tool")
        assert after == before[job_id]
        assert (manager.directory(job_id).sub("inputs") / "marker").read_text() == "keep"
    assert state(manager, "b") is JobState.QUEUED
    harness.open("a")
    assert final(manager, "a", wait_for)["returncode"] == 0
    assert final(manager, "b", wait_for)["returncode"] == 0


def test_setup_after_finish_starts_attempt_two_in_a_clean_directory(
    harness: Harness, wait_for: WaitFor
) -> None:
    manager = harness.manager()
    count = harness.tmp / "count"
    run_job(manager, "1", f"echo ran >> {count}; echo first > ../outputs/out.txt; exit 1")
    assert final(manager, "1", wait_for)["returncode"] == 1
    directory = manager.directory("1")
    record = manager.setup("1", "cat1", "1.0")
    assert (record.attempt, record.state, record.return_code) == (2, JobState.SETUP, None)
    assert not (directory.sub("outputs") / "out.txt").exists()
    assert directory.return_code() is None
    assert not (directory.root / "stdout").exists()
    assert manager.status("1")["status"] == "preprocessing"
    manager.submit("1", {"command_line": f"echo ran >> {count}; echo second"})
    status = final(manager, "1", wait_for)
    assert (status["attempt"], status["returncode"], status["stdout"]) == (2, 0, "second\n")
    assert count.read_text() == "ran\nran\n"


# -- queueing ---------------------------------------------------------------------------------


def test_concurrency_limit_keeps_the_second_job_queued(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    started_b = harness.tmp / "b_started"
    run_job(manager, "a", harness.gate("a"))
    run_job(manager, "b", f"touch {started_b}")
    wait_for(lambda: state(manager, "a") is JobState.RUNNING, what="a to run")
    settle(manager)
    b = manager.record("b")
    assert (b.state, b.launch_state) == (JobState.QUEUED, PENDING)
    assert manager.status("b")["status"] == "queued"
    assert not started_b.exists()
    harness.open("a")
    final(manager, "b", wait_for)
    assert started_b.exists()
    assert manager.record("a").updated <= manager.record("b").updated


def test_queue_is_first_in_first_out(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    order = harness.tmp / "order"
    run_job(manager, "first", harness.gate("first"))
    for job_id in ("c", "a", "b"):
        run_job(manager, job_id, f"echo {job_id} >> {order}")
    harness.open("first")
    for job_id in ("c", "a", "b"):
        final(manager, job_id, wait_for)
    assert order.read_text().split() == ["c", "a", "b"]


def test_unqueued_runs_everything_at_once(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager(UnqueuedManager("local", {"min_polling_interval": "0.05"}))
    for job_id in ("1", "2", "3"):
        run_job(manager, job_id, harness.gate("all"))
    wait_for(
        lambda: all(state(manager, j) is JobState.RUNNING for j in ("1", "2", "3")),
        what="all three to run",
    )
    harness.open("all")
    for job_id in ("1", "2", "3"):
        assert final(manager, job_id, wait_for)["status"] == "complete"


# -- cancel and clean -------------------------------------------------------------------------


def test_cancel_a_queued_job_means_it_never_runs(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    ran = harness.tmp / "b_ran"
    run_job(manager, "a", harness.gate("a"))
    run_job(manager, "b", f"touch {ran}")
    wait_for(lambda: state(manager, "a") is JobState.RUNNING, what="a to run")
    cancelled = manager.cancel("b")
    assert cancelled.state is JobState.CANCELLED
    harness.open("a")
    final(manager, "a", wait_for)
    settle(manager)
    assert not ran.exists()
    status = manager.status("b")
    assert (status["complete"], status["status"], status["returncode"]) == (
        "true",
        "cancelled",
        None,
    )
    assert "cancelled by the client" in status["stderr"]
    assert manager.record("b").launch_state == PENDING


def test_cancel_a_running_job_kills_its_process_group(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    pid_file = harness.tmp / "sleep.pid"
    run_job(manager, "1", f"sleep 300 & echo $! > {pid_file}; wait")
    wait_for(
        lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job's sleep to start"
    )
    grandchild = int(pid_file.read_text())
    leader, _ = process.parse_identity(manager.record("1").external_id or "")
    assert manager.cancel("1").state is JobState.CANCELLED
    wait_for(lambda: gone(grandchild), timeout=5, what="the grandchild sleep to die")
    assert gone(leader)
    settle(manager)
    record = manager.record("1")
    assert (record.state, record.return_code) == (JobState.CANCELLED, None)  # not turned into lost
    assert manager.status("1")["status"] == "cancelled"


def test_cancel_a_finished_job_changes_nothing(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "1", "true")
    final(manager, "1", wait_for)
    assert manager.cancel("1").state is JobState.COMPLETE
    with pytest.raises(UnknownJobError):
        manager.cancel("2")


def test_clean_a_finished_job(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    run_job(manager, "1", "echo x > ../outputs/o")
    final(manager, "1", wait_for)
    manager.clean("1")
    assert not (harness.staging / "1").exists()
    assert manager.find("1") is None
    with pytest.raises(UnknownJobError):
        manager.status("1")


def test_clean_a_running_job_kills_it_first(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    pid_file = harness.tmp / "sleep.pid"
    run_job(manager, "1", f"sleep 300 & echo $! > {pid_file}; wait")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the job to start")
    manager.clean("1")
    wait_for(lambda: gone(int(pid_file.read_text())), timeout=5, what="the job to die")
    assert not (harness.staging / "1").exists()
    assert harness.store.get("local", "1") is None


# -- listeners --------------------------------------------------------------------------------


def test_listeners_hear_every_state_change(harness: Harness, wait_for: WaitFor) -> None:
    manager = harness.manager()
    heard: list[tuple[str, JobState]] = []

    def broken(_manager: StatefulManager, _record: JobRecord) -> None:
        raise RuntimeError("listener bug")

    manager.listeners.append(broken)  # a failing listener must not stop the others or the job
    manager.listeners.append(lambda m, r: heard.append((r.job_id, r.state)))
    run_job(manager, "1", "true")
    final(manager, "1", wait_for)
    wait_for(lambda: ("1", JobState.COMPLETE) in heard)
    assert heard == [("1", JobState.QUEUED), ("1", JobState.RUNNING), ("1", JobState.COMPLETE)]
    manager.setup("2")
    manager.cancel("2")
    assert heard[-1] == ("2", JobState.CANCELLED)
