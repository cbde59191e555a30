"""Galaxy runs its tools through LWR, over REST and over the message queue, as a user sees it.

Each test starts its jobs together and then waits for them (Galaxy runs them concurrently), and
checks what a Galaxy user would: the job's state, and every output dataset's exact content.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.galaxy.api import INPUT, Galaxy

pytestmark = [pytest.mark.integration, pytest.mark.galaxy, pytest.mark.timeout(900)]


def outputs(galaxy: Galaxy, job: dict[str, Any]) -> dict[str, str]:
    """Output name -> content of every dataset output of a finished job."""
    return {name: galaxy.content(out["id"]) for name, out in job["outputs"].items()}


def run_all(galaxy: Galaxy, environment: str, tools: list[str]) -> dict[str, dict[str, Any]]:
    """Start ``tools`` on ``environment`` at once; tool -> (tool run answer, final job details)."""
    dataset = galaxy.input_dataset()
    started = {tool: galaxy.run(tool, environment, dataset) for tool in tools}
    return {
        tool: {"run": run, "job": galaxy.wait(run["jobs"][0]["id"])}
        for tool, run in started.items()
    }


def check_tools(galaxy: Galaxy, environment: str, results: dict[str, dict[str, Any]]) -> None:
    cat = results["cat"]["job"]
    assert cat["state"] == "ok", (cat, galaxy.tail())
    assert outputs(galaxy, cat) == {"out_file1": INPUT + "ran on LWR\n"}

    split = results["split"]["job"]
    assert split["state"] == "ok", (split, galaxy.tail())
    assert outputs(galaxy, split) == {"first": "hello\n", "rest": "from\ngalaxy\n"}

    discover = results["discover"]
    assert discover["job"]["state"] == "ok", (discover["job"], galaxy.tail())
    assert outputs(galaxy, discover["job"]) == {
        "report": "part_00.txt\npart_01.txt\npart_02.txt\n",
        # the discovered datasets are outputs of the job too, under Galaxy's own names
        "__new_primary_file_parts|part_00__": "hello\n",
        "__new_primary_file_parts|part_01__": "from\n",
        "__new_primary_file_parts|part_02__": "galaxy\n",
    }
    (collection,) = discover["run"]["output_collections"]
    assert galaxy.collection_contents(collection["id"]) == {
        "part_00": "hello\n",
        "part_01": "from\n",
        "part_02": "galaxy\n",
    }

    fail = results["fail"]["job"]
    assert fail["state"] == "error", (fail, galaxy.tail())
    assert "deliberate failure on LWR" in (fail.get("tool_stderr") or ""), fail
    assert fail["exit_code"] == 3, fail


@pytest.mark.parametrize("environment", ["rest", "mq"])
def test_tools(galaxy: Galaxy, environment: str) -> None:
    results = run_all(galaxy, environment, ["cat", "split", "discover", "fail"])
    check_tools(galaxy, environment, results)
    log = galaxy.environments[environment].server.log()
    if environment == "mq":
        # remote_transfer: LWR itself fetched the inputs from, and posted the outputs to,
        # Galaxy's job files API
        assert f"from {galaxy.url}/api/jobs/" in log
        assert f"to {galaxy.url}/api/jobs/" in log
    else:
        assert "staged input" in log  # Galaxy's client uploaded them
