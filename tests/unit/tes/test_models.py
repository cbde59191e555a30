"""Checking a TES task document: what is kept, what is refused with the field's name."""

from __future__ import annotations

from typing import Any

import pytest

from lwr.errors import InvalidRequestError
from lwr.tes.models import parse_task

EXECUTOR = {"image": "x", "command": ["true"]}


def test_server_fields_are_dropped_and_content_wins_over_url() -> None:
    task = parse_task(
        {
            "id": "mine",
            "state": "COMPLETE",
            "logs": [],
            "name": "n",
            "executors": [EXECUTOR],
            "inputs": [{"path": "/a", "content": "c", "url": "http://ignored"}],
            "outputs": [{"path": "/o/*.txt", "path_prefix": "/o", "url": "file:///r"}],
        }
    )
    assert "id" not in task.document and "state" not in task.document
    assert task.inputs[0].url is None and task.outputs[0].is_glob


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "the task"),
        ({"executors": []}, "executors"),
        ({"executors": [{"command": ["x"]}]}, "image"),
        ({"executors": [{**EXECUTOR, "env": {"A B": "x"}}]}, "env"),
        ({"executors": [{**EXECUTOR, "ignore_error": "yes"}]}, "ignore_error"),
        ({"executors": [EXECUTOR], "inputs": [{"path": "/a"}]}, "url or a content"),
        ({"executors": [EXECUTOR], "inputs": [{"path": "a", "content": "x"}]}, "absolute"),
        (
            {"executors": [EXECUTOR], "inputs": [{"path": "/a", "content": "x", "type": "X"}]},
            "type",
        ),
        ({"executors": [EXECUTOR], "outputs": [{"path": "/o"}]}, "url"),
        ({"executors": [EXECUTOR], "resources": {"cpu_cores": 0}}, "cpu_cores"),
        ({"executors": [EXECUTOR], "resources": {"ram_gb": "lots"}}, "ram_gb"),
        ({"executors": [EXECUTOR], "tags": {"a": 1}}, "tags"),
        ({"executors": [EXECUTOR], "name": "a\x00b"}, "NUL"),
    ],
)
def test_malformed_tasks_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError, match=field):
        parse_task(body)
