"""Message bodies: what the client sends becomes the launch dictionary HTTP submit produces."""

from __future__ import annotations

from typing import Any

import pytest

from lwr.errors import InvalidRequestError
from lwr.messaging import messages


def setup_body(**extra: Any) -> dict[str, Any]:
    return {"job_id": "42", "command_line": "echo hi", **extra}


def test_setup_translates_the_message_names_into_the_http_ones() -> None:
    job_id, launch = messages.setup_launch(
        setup_body(
            submit_params={"native_specification": "-q fast"},
            env=[{"name": "A", "value": "1"}],
            touch_outputs=["out.dat"],
            token_endpoint="https://galaxy/token",
            dynamic_file_sources=None,
            setup_params={"tool_id": "cat1"},
            acknowledge_uuid="u1",
        )
    )
    assert job_id == "42"
    assert launch == {
        "command_line": "echo hi",
        "params": {"native_specification": "-q fast"},
        "env": [{"name": "A", "value": "1"}],
        "submit_extras": {"touch_outputs": ["out.dat"]},
        "token_endpoint": {"token_endpoint": "https://galaxy/token"},
        "setup_params": {"tool_id": "cat1"},
    }


def test_setup_flag_without_parameters_still_sets_the_job_up() -> None:
    _, launch = messages.setup_launch(setup_body(setup=True))
    assert launch["setup_params"] == {}


@pytest.mark.parametrize(
    "body",
    [
        {"command_line": "x"},
        {"job_id": "../x", "command_line": "x"},
        {"job_id": 7, "command_line": "x"},
        {"job_id": "1"},
        {"job_id": "1", "command_line": "  "},
        setup_body(env="A=1"),
        setup_body(remote_staging=[]),
        setup_body(setup_params="{}"),
    ],
)
def test_malformed_setup_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        messages.setup_launch(body)


@pytest.mark.parametrize("body", [[1], "text", None, 3])
def test_a_body_must_be_an_object(body: object) -> None:
    with pytest.raises(InvalidRequestError):
        messages.body_dict(body)


def test_ack_request_is_optional_and_validated() -> None:
    assert messages.ack_request({"job_id": "1"}) is None
    assert messages.ack_request({"acknowledge_uuid": "u", "acknowledge_queue": "setup_ack"}) == (
        "u",
        "setup_ack",
    )
    for queue in ("setup", "../x_ack", "", None, "a b_ack"):
        with pytest.raises(InvalidRequestError):
            messages.ack_request({"acknowledge_uuid": "u", "acknowledge_queue": queue})
    with pytest.raises(InvalidRequestError):
        messages.ack_request({"acknowledge_uuid": "", "acknowledge_queue": "setup_ack"})


def test_ack_response_and_reply() -> None:
    assert messages.ack_response(messages.ack_reply("u9")) == "u9"
    with pytest.raises(InvalidRequestError):
        messages.ack_response({})


def test_failed_status_is_final_and_says_why() -> None:
    status = messages.failed_status("42", "setup failed: no")
    assert status["complete"] == "true"
    assert status["status"] == "failed"
    assert "setup failed: no" in status["stderr"]


def test_a_body_nested_deeper_than_http_parameters_may_be_is_refused() -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    with pytest.raises(InvalidRequestError, match="message body nests JSON deeper than 64"):
        messages.body_dict(setup_body(env=deep))
    assert messages.body_dict(setup_body(env=[{"name": "A"}])) == setup_body(env=[{"name": "A"}])
