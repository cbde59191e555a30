"""Pure parts of lwr.managers.drmaa_session: the state table, job descriptions, retries, import."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from lwr.errors import ConfigurationError, SubmitError
from lwr.managers.base import JobState, LaunchSpec
from lwr.managers.drmaa_session import (
    JobDescription,
    call_with_retry,
    drmaa_environment,
    import_drmaa,
    map_native_state,
    scheduler_job_name,
)

ALL_DRMAA_STATES = {
    "undetermined": JobState.RUNNING,
    "queued_active": JobState.QUEUED,
    "system_on_hold": JobState.FAILED,
    "user_on_hold": JobState.QUEUED,
    "user_system_on_hold": JobState.FAILED,
    "running": JobState.RUNNING,
    "system_suspended": JobState.RUNNING,
    "user_suspended": JobState.RUNNING,
    "user_system_suspended": JobState.RUNNING,
    "done": JobState.COMPLETE,
    "failed": JobState.FAILED,
}


@pytest.mark.parametrize(("native", "state"), sorted(ALL_DRMAA_STATES.items()))
def test_every_drmaa_state_is_mapped(native: str, state: JobState) -> None:
    status = map_native_state(native)
    assert (status.state, status.native_state) == (state, native)
    if state is JobState.FAILED:
        assert status.reason


def test_unknown_state_is_logged_and_kept_polling(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        status = map_native_state("exotic")
    assert status.state is JobState.RUNNING and status.native_state == "exotic"
    assert "exotic" in caplog.text


def spec(tmp_path: Path, native: str | None = None) -> LaunchSpec:
    return LaunchSpec("sge", "42", 2, tmp_path, tmp_path / "w", tmp_path / "command.sh", native)


def test_description_uses_manager_default_unless_client_overrides(tmp_path: Path) -> None:
    assert JobDescription.from_spec(spec(tmp_path), "-q all.q").native_specification == "-q all.q"
    assert JobDescription.from_spec(spec(tmp_path, "-h "), "-q a").native_specification == "-h"
    assert JobDescription.from_spec(spec(tmp_path, ""), "-q a").native_specification == ""


def test_description_keeps_scheduler_output_apart_from_the_commands(tmp_path: Path) -> None:
    description = JobDescription.from_spec(spec(tmp_path))
    assert description.job_name == "lwr-sge-42-2"
    assert description.working_directory == str(tmp_path)
    assert description.output_path == str(tmp_path / "drmaa_stdout")
    assert description.error_path == str(tmp_path / "drmaa_stderr")
    assert description.remote_command == str(tmp_path / "command.sh")


def test_description_round_trips_and_refuses_unknown_keys(tmp_path: Path) -> None:
    import json

    description = JobDescription.from_spec(spec(tmp_path, "-l h_rt=60"))
    data = json.loads(description.to_json())
    assert JobDescription.from_dict(data) == description
    with pytest.raises(ValueError, match="evil"):
        JobDescription.from_dict({**data, "evil": "x"})


@pytest.mark.parametrize(
    ("name", "safe"),
    [("lwr-m-1-1", "lwr-m-1-1"), ("a/b:c@d*e?", "a_b_c_d_e_"), ("1abc", "j1abc")],
)
def test_scheduler_job_name(name: str, safe: str) -> None:
    assert scheduler_job_name(name) == safe


def test_drmaa_environment_keeps_only_what_drmaa_needs() -> None:
    env = {
        "SGE_ROOT": "/x",
        "DRMAA_LIBRARY_PATH": "/l",
        "GLIBC_TUNABLES": "t",
        "HOME": "/root",
        "PYTHONPATH": "/evil",
        "PATH": "/bin",
    }
    assert drmaa_environment(env) == {
        "SGE_ROOT": "/x",
        "DRMAA_LIBRARY_PATH": "/l",
        "GLIBC_TUNABLES": "t",
    }


def test_retry_absorbs_transient_errors_then_gives_up() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("busy")
        return "ok"

    assert call_with_retry(flaky, "x", (TimeoutError,), attempts=3, delay=0.001) == "ok"

    def down() -> str:
        raise TimeoutError("down")

    with pytest.raises(SubmitError, match="after 2 attempts: down"):
        call_with_retry(down, "submit", (TimeoutError,), attempts=2, delay=0.001)


def test_unloadable_library_names_the_variables_that_fix_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "drmaa" in sys.modules:
        pytest.skip("drmaa already loaded in this process")
    if importlib.util.find_spec("drmaa") is None:
        pytest.skip("the drmaa binding is not installed")
    monkeypatch.setenv("DRMAA_LIBRARY_PATH", "/nonexistent/libdrmaa.so")
    with pytest.raises(ConfigurationError) as info:
        import_drmaa()
    assert "DRMAA_LIBRARY_PATH" in info.value.message
    assert "GLIBC_TUNABLES" in info.value.message
