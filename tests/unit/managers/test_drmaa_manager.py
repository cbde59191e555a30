"""DrmaaManager/ExternalDrmaaManager logic over a fake DRMAA session (no scheduler needed).

The fake keeps a table of job states the way a DRMAA session answers them; the real thing is
exercised in tests/integration/test_drmaa_sge.py.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from pathlib import Path

import pytest

from lwr.errors import AuthorizationError, InvalidRequestError, SubmitError
from lwr.managers import drmaa as drmaa_module
from lwr.managers.base import ActiveJob, JobState, LaunchSpec
from lwr.managers.drmaa import DrmaaManager, ExternalDrmaaManager
from lwr.managers.drmaa_session import GONE, JobDescription


class FakeSession:
    """Answers like SharedSession from a dict of job id -> DRMAA state string."""

    drms_info = "Fake DRM"

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.submitted: list[JobDescription] = []
        self.terminated: list[str] = []

    def run_job(self, description: JobDescription) -> str:
        self.submitted.append(description)
        external_id = str(100 + len(self.submitted))
        self.states[external_id] = "queued_active"
        return external_id

    def job_status(self, external_id: str) -> str:
        return self.states.get(external_id, GONE)

    def terminate(self, external_id: str) -> None:
        self.terminated.append(external_id)
        self.states.pop(external_id, None)

    def release(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drmaa_module, "import_drmaa", lambda: None)


def make(tmp_path: Path, name: str, user: str | None = None) -> LaunchSpec:
    job_dir = tmp_path / name
    (job_dir / "working").mkdir(parents=True)
    return LaunchSpec("m", name, 1, job_dir, job_dir / "working", job_dir / "command.sh", user=user)


def manager_with(session: FakeSession, options: dict[str, str] | None = None) -> DrmaaManager:
    manager = DrmaaManager("m", options or {"native_specification": "-q all.q"})
    manager._session = session  # type: ignore[assignment]
    return manager


def test_launch_then_states_through_to_complete(tmp_path: Path) -> None:
    session = FakeSession()
    manager = manager_with(session)
    spec = make(tmp_path, "a")
    job = ActiveJob(spec, manager.launch(spec))
    assert session.submitted[0].native_specification == "-q all.q"
    assert manager.poll([job])[job.external_id].state is JobState.QUEUED
    session.states[job.external_id] = "running"
    assert manager.poll([job])[job.external_id].state is JobState.RUNNING
    session.states[job.external_id] = "done"
    assert manager.poll([job])[job.external_id].state is JobState.COMPLETE


def test_failed_without_return_code_is_failed_and_removed(tmp_path: Path) -> None:
    session = FakeSession()
    manager = manager_with(session)
    job = ActiveJob(make(tmp_path, "eqw"), "7")
    session.states["7"] = "failed"
    status = manager.poll([job])["7"]
    assert (status.state, status.native_state) == (JobState.FAILED, "failed")
    assert status.reason
    assert session.terminated == ["7"]


def test_failed_after_writing_return_code_is_complete(tmp_path: Path) -> None:
    session = FakeSession()
    manager = manager_with(session)
    spec = make(tmp_path, "late")
    (spec.job_directory / "return_code").write_text("0\n")
    session.states["8"] = "failed"
    assert manager.poll([ActiveJob(spec, "8")])["8"].state is JobState.COMPLETE


def test_forgotten_job_is_judged_by_return_code(tmp_path: Path) -> None:
    manager = manager_with(FakeSession())
    done, lost = make(tmp_path, "done"), make(tmp_path, "lost")
    (done.job_directory / "return_code").write_text("3\n")
    statuses = manager.poll([ActiveJob(done, "1"), ActiveJob(lost, "2")])
    assert (statuses["1"].state, statuses["1"].native_state) == (JobState.COMPLETE, GONE)
    assert statuses["2"].state is JobState.LOST and statuses["2"].reason


def test_unknown_option_is_refused() -> None:
    with pytest.raises(Exception, match="nativ_specification"):
        DrmaaManager.check_options("m", {"nativ_specification": "x"})


# ExternalDrmaaManager, with the helpers replaced by fakes that record their input


FAKE_HELPER = """#!{python}
import json, os, sys
record = {{"argv": sys.argv[1:], "stdin": sys.stdin.read()}}
with open({log!r}, "a") as fh:
    fh.write(json.dumps(record) + "\\n")
sys.stdout.write({answer!r} + "\\n")
"""


def fake_helper(tmp_path: Path, name: str, answer: str = "") -> tuple[str, Path]:
    log = tmp_path / f"{name}.log"
    script = tmp_path / name
    script.write_text(FAKE_HELPER.format(python=sys.executable, log=str(log), answer=answer))
    script.chmod(0o755)
    return str(script), log


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def user() -> str:
    """A real account the policy accepts: this process's own, with min_uid lowered to it."""
    return pwd.getpwuid(os.getuid()).pw_name


def external(tmp_path: Path, user: str, **extra: str) -> tuple[ExternalDrmaaManager, dict]:
    launch, launch_log = fake_helper(tmp_path, "launch", answer="noise\n4242")
    kill, kill_log = fake_helper(tmp_path, "kill")
    chown, chown_log = fake_helper(tmp_path, "chown")
    options = {
        "production": "false",
        "drmaa_launch_script": launch,
        "drmaa_kill_script": kill,
        "chown_working_directory_script": chown,
        "min_uid": str(os.getuid()),
        "allow_root": "true",
        **extra,
    }
    manager = ExternalDrmaaManager("ext", options)
    manager._session = FakeSession()  # type: ignore[assignment]
    return manager, {"launch": launch_log, "kill": kill_log, "chown": chown_log}


def test_external_launch_chowns_then_submits_through_the_helper(
    tmp_path: Path, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384")
    manager, logs = external(tmp_path, user)
    spec = make(tmp_path, "job", user=user)
    assert manager.launch(spec) == "4242"
    assert records(logs["chown"])[0]["argv"] == [user, str(spec.job_directory)]
    request = json.loads(records(logs["launch"])[0]["stdin"])
    assert request["job"]["remote_command"] == str(spec.script)
    assert request["environment"]["GLIBC_TUNABLES"] == "glibc.rtld.optional_static_tls=16384"


def test_external_gives_the_directory_back_when_the_job_ends(tmp_path: Path, user: str) -> None:
    manager, logs = external(tmp_path, user)
    spec = make(tmp_path, "job", user=user)
    (spec.job_directory / "return_code").write_text("0")
    assert manager.poll([ActiveJob(spec, "9")])["9"].state is JobState.COMPLETE
    own = pwd.getpwuid(os.getuid()).pw_name
    assert records(logs["chown"])[-1]["argv"] == [own, str(spec.job_directory)]


def test_external_cancel_kills_as_the_user(tmp_path: Path, user: str) -> None:
    manager, logs = external(tmp_path, user)
    manager.cancel(ActiveJob(make(tmp_path, "job", user=user), "77"))
    assert json.loads(records(logs["kill"])[0]["stdin"])["external_id"] == "77"


def test_external_production_prefixes_sudo(tmp_path: Path, user: str) -> None:
    manager, _ = external(tmp_path, user, production="true", sudo="echo")
    assert manager._privileged("alice") == ["echo", "-u", "alice"]
    assert manager._privileged("root") == ["echo"]


def test_external_refuses_bad_users(tmp_path: Path, user: str) -> None:
    manager, logs = external(tmp_path, user, allow_root="false", allowed_users="nobody-else")
    with pytest.raises(InvalidRequestError):
        manager.launch(make(tmp_path, "a", user="Bad;Name"))
    with pytest.raises(InvalidRequestError):
        manager.launch(make(tmp_path, "b"))
    with pytest.raises(AuthorizationError):
        manager.launch(make(tmp_path, "c", user=user))
    assert not logs["launch"].exists()


def test_external_helper_failure_keeps_what_it_said(tmp_path: Path, user: str) -> None:
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho 'qmaster says no' >&2\nexit 3\n")
    broken.chmod(0o755)
    manager, _ = external(tmp_path, user, drmaa_launch_script=str(broken))
    with pytest.raises(SubmitError) as info:
        manager.launch(make(tmp_path, "job", user=user))
    assert info.value.returncode == 3 and "qmaster says no" in info.value.stderr
