"""A whitelisting LWR (``tool_config_files``) behind a real Galaxy: its tool runs, others fail.

The whitelisted tool's validators describe what Galaxy 26.1 really sends (the ``tool_script.sh``
wrapper command line, and the tool's command inside that script; :mod:`features`), so this also
proves that such a whitelist can be written for Galaxy at all.
"""

from __future__ import annotations

import pytest

from tests.integration.galaxy.api import INPUT, Galaxy
from tests.integration.galaxy.tools import tool_id

pytestmark = [pytest.mark.integration, pytest.mark.galaxy, pytest.mark.timeout(900)]

ENVIRONMENT = "rest_tools"


def test_only_the_whitelisted_tool_runs(galaxy: Galaxy) -> None:
    dataset = galaxy.input_dataset()
    started = {tool: galaxy.run(tool, ENVIRONMENT, dataset) for tool in ("cat", "split")}
    jobs = {tool: galaxy.wait(run["jobs"][0]["id"]) for tool, run in started.items()}

    cat = jobs["cat"]
    assert cat["state"] == "ok", (cat, galaxy.tail())
    assert galaxy.content(cat["outputs"]["out_file1"]["id"]) == INPUT + "ran on LWR\n"

    assert jobs["split"]["state"] == "error", (jobs["split"], galaxy.tail())
    log = galaxy.environments[ENVIRONMENT].server.log()
    refused = f"refused by tool whitelist rule 'tool_id': tool {tool_id('split', ENVIRONMENT)!r}"
    assert refused in log, log[-3000:]
    assert "refused by tool whitelist rule" not in log.replace(refused, ""), log[-3000:]
