"""The WSGI application in-process: the job life cycle (setup, submit, status, cancel, clean).

Split from test_dispatch.py; the Client is in dispatch_support.py, the fixtures in conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lwr.pulsar_version import PULSAR_PROTOCOL_VERSION
from tests.unit.web.dispatch_support import (
    BOTH_BACKENDS,
    AppFactory,
    Client,
    assert_error,
)

# -- job life cycle ---------------------------------------------------------------------------


def test_setup_answer(client: Client) -> None:
    answer = client.setup("1")
    staging = client.app.config.staging_directory / "1"
    assert answer["job_id"] == "1"
    assert answer["working_directory"] == str(staging / "working")
    assert answer["outputs_directory"] == str(staging / "outputs")
    assert answer["job_directory"] == str(staging)
    assert answer["path_separator"] == os.sep
    assert answer["system_properties"] == {"separator": os.sep}
    assert answer["lwr_version"] == client.app.version
    assert answer["pulsar_version"] == PULSAR_PROTOCOL_VERSION
    assert Path(answer["working_directory"]).is_dir()


def test_setup_errors(client: Client) -> None:
    assert_error(client("POST", "/jobs", {}), 400, "'job_id'")
    assert_error(client("POST", "/jobs", {"job_id": ""}), 400, "'job_id'")
    assert_error(client("POST", "/jobs", {"job_id": ".."}), 400, "invalid job id")
    assert_error(client("POST", "/jobs", {"job_id": "a/b"}), 400, "invalid job id")


def test_setup_with_assigned_ids(make_client: AppFactory) -> None:
    uuid_client = make_client(assign_ids="uuid")
    answer = uuid_client.setup("1")
    assert answer["job_id"] != "1" and len(answer["job_id"]) == 32
    assert uuid_client.status(answer["job_id"])["status"] == "preprocessing"
    assert uuid_client.status("1")["status"] == "lost"


@BOTH_BACKENDS
def test_submit_and_complete(client: Client, wait_for: Callable[..., Any]) -> None:
    client.setup("1")
    response = client.submit(
        "1", 'echo "$GREETING"; exit 4', env=[{"name": "GREETING", "value": "hi there"}]
    )
    assert response.status_int == 200, response.text
    assert response.json == {"job_id": "1", "status": "queued"}
    status = client.final("1", wait_for)
    assert (status["status"], status["returncode"], status["stdout"]) == (
        "complete",
        4,
        "hi there\n",
    )


def test_final_status_reports_the_pulsar_version(
    make_client: AppFactory, wait_for: Callable[..., Any]
) -> None:
    """Galaxy decides how to find discovered outputs from the final status's pulsar_version:
    without it, it takes the server for Pulsar 0.6.0 (found with the real Galaxy)."""
    for options, version in (
        ({}, PULSAR_PROTOCOL_VERSION),
        ({"pulsar_protocol_version": "0.15.12"}, "0.15.12"),
    ):
        job_client = make_client(**options)
        assert job_client.setup("1")["pulsar_version"] == version
        job_client.submit("1", "true")
        assert job_client.final("1", wait_for)["pulsar_version"] == version


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "'command_line'"),
        ({"command_line": ""}, "'command_line'"),
        ({"command_line": "true", "env": "[{not json"}, "'env' is not valid JSON"),
        ({"command_line": "true", "env": '{"name": "A"}'}, "'env' has the wrong JSON type"),
        ({"command_line": "true", "params": "[]"}, "'params'"),
        (
            {"command_line": "true", "env": '[{"name": "A-B", "value": "x"}]'},
            "invalid environment variable name",
        ),
        (
            {
                "command_line": "true",
                "dependencies_description": '{"requirements": [{"name": "../x"}]}',
            },
            "invalid requirement",
        ),
    ],
)
def test_submit_errors(client: Client, params: dict[str, str], fragment: str) -> None:
    client.setup("1")
    assert_error(client("POST", "/jobs/1/submit", params), 400, fragment)
    assert client.status("1")["status"] == "preprocessing"  # nothing was queued


def test_submit_unknown_job_is_404_unless_setup_params_come_along(
    client: Client, wait_for: Callable[..., Any]
) -> None:
    assert_error(client.submit("7", "true"), 404, "unknown job '7'")
    response = client.submit(
        "7", "echo set-up-here", setup_params={"tool_id": "t", "tool_version": "1"}
    )
    assert response.status_int == 200
    assert client.final("7", wait_for)["stdout"] == "set-up-here\n"


def test_status_of_an_unknown_job_is_200_lost(client: Client) -> None:
    status = client.status("never-set-up")
    assert status["complete"] == "true"
    assert status["status"] == "lost"
    assert "never-set-up" in status["stderr"]


def test_status_of_a_bad_job_id_is_400(client: Client) -> None:
    assert_error(client("GET", "/jobs/a..b/status"), 400, "invalid job id")


def test_cancel_and_clean(client: Client, wait_for: Callable[..., Any]) -> None:
    client.setup("1")
    client.submit("1", "sleep 300")
    wait_for(lambda: client.status("1")["status"] == "running", what="the job to run")
    response = client("PUT", "/jobs/1/cancel")
    assert response.json == {"job_id": "1", "status": "cancelled"}
    assert client.status("1")["status"] == "cancelled"
    response = client("DELETE", "/jobs/1")
    assert response.json == {"job_id": "1", "cleaned": True}
    assert not (client.app.config.staging_directory / "1").exists()
    assert client.status("1")["status"] == "lost"
    assert_error(client("DELETE", "/jobs/1"), 404, "unknown job")
    assert_error(client("PUT", "/jobs/1/cancel"), 404, "unknown job")


def test_named_managers_are_separate(client: Client, wait_for: Callable[..., Any]) -> None:
    answer = client.setup("1", manager="/managers/second")
    assert "/second/1" in answer["job_directory"]
    assert client.status("1")["status"] == "lost"  # the default manager never heard of it
    client.submit("1", "echo second", manager="/managers/second")
    assert client.final("1", wait_for, manager="/managers/second")["stdout"] == "second\n"


def test_a_json_surrogate_in_dynamic_file_sources_does_not_break_status(
    client: Client, wait_for: Callable[..., Any]
) -> None:
    client.setup("1")
    params = {"command_line": "true", "dynamic_file_sources": '[{"path": "x\\ud800.json"}]'}
    assert client("POST", "/jobs/1/submit", params).status_int == 200
    assert client.final("1", wait_for)["realized_dynamic_file_sources"] == []
