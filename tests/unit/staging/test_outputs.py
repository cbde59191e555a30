"""Which discovered outputs the server sends back itself, on both sides of Galaxy's 0.15.13 gate.

The client outputs are those a real Galaxy 26.1 sent over the message queue for a tool with
``<discover_datasets pattern="__name_and_ext__" directory="parts"/>`` in an output collection
(captured from LWR's job store in the tests of ``tests/integration/galaxy``).
"""

from __future__ import annotations

from typing import Any

import pytest

from lwr.staging.outputs import plan_outputs

WORKING = "/galaxy/jobs/000/3/working"
DEFAULT_PATTERNS = [
    r"primary_.*|galaxy.json|metadata_.*|dataset_\d+\.dat|__instrument_.*|dataset_\d+_files.+"
    r"|outputs_populated/.*|tool_stdout|tool_stderr",
    r"galaxy\.json",
]
NAME_AND_EXT = r"(?P<name>.*)\.(?P<ext>[^\.]+)?"
COLLECTOR = {
    "discover_via": "pattern",
    "format": None,
    "visible": False,
    "assign_primary_output": False,
    "directory": "parts",
    "recurse": False,
    "match_relative_path": False,
    "sort_key": "filename",
    "sort_comp": "lexical",
    "sort_reverse": False,
    "pattern": NAME_AND_EXT,
}
STATUS = {
    "working_directory_contents": ["parts/part_00.txt", "parts/part_01.txt", "notes.txt", "x"],
    "outputs_directory_contents": [],
}


def _sent(client_outputs: dict[str, Any]) -> list[str]:
    plan = plan_outputs({"working_directory": WORKING, **client_outputs}, STATUS)
    return [output.name for output in plan.outputs if output.output_type == "output_workdir"]


def test_from_0_15_13_the_collector_descriptions_choose_within_their_directory() -> None:
    sent = _sent(
        {"dynamic_outputs": DEFAULT_PATTERNS, "dataset_collector_descriptions": [COLLECTOR]}
    )
    assert sent == ["parts/part_00.txt", "parts/part_01.txt"]


def test_below_0_15_13_the_raw_patterns_choose_anywhere_in_the_working_directory() -> None:
    sent = _sent({"dynamic_outputs": [*DEFAULT_PATTERNS, NAME_AND_EXT]})
    assert sent == ["parts/part_00.txt", "parts/part_01.txt", "notes.txt"]


def test_without_either_only_the_default_patterns_apply() -> None:
    assert _sent({"dynamic_outputs": DEFAULT_PATTERNS}) == []


@pytest.mark.parametrize("depth", [990, 100_000])
def test_a_galaxy_json_nested_too_deep_is_ignored_not_fatal(
    depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The job writes galaxy.json: nesting that would break the parser or the walk is ignored."""
    hostile = {"path": "galaxy.json", "type": "galaxy", "contents": "[" * depth + "]" * depth}
    status = {**STATUS, "realized_dynamic_file_sources": [hostile]}
    plan = plan_outputs({"working_directory": WORKING, "dynamic_outputs": []}, status)
    assert [o for o in plan.outputs if o.output_type == "output_workdir"] == []
    assert "ignoring galaxy.json galaxy.json: galaxy.json nests JSON deeper" in caplog.text
