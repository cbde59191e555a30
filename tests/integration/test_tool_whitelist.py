"""Tool whitelisting with Galaxy's own client: the allowed tool runs, each violation is refused.

The server is started with ``tool_config_files`` pointing at a toolbox listing one tool with a
``<command_validator>`` and a ``<configfile_validator>``. The real ``pulsar.client`` then runs
the tool as Galaxy would; every refusal is a 403 whose JSON names the rule, and the server log
names it for the operator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.galaxy_job import GalaxyJob, write_toolbox
from tests.integration.server import LwrServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server(lwr_server_factory: ServerFactory, tmp_path: Path) -> LwrServer:
    toolbox = write_toolbox(tmp_path / "admin")
    return lwr_server_factory(app_options={"tool_config_files": str(toolbox)})


def refused(server: LwrServer, job: GalaxyJob, job_id: str, rule: str) -> None:
    """The client's submit fails with 403, and the server says which rule refused it."""
    from pulsar.client.exceptions import PulsarClientTransportError

    with pytest.raises(PulsarClientTransportError) as info:
        job.run(server.url, job_id)
    assert info.value.transport_code == 403, info.value.message
    assert f"job _default_/{job_id}: refused by tool whitelist rule {rule!r}" in server.log()
    assert not job.output.exists()


def test_the_whitelisted_tool_runs(server: LwrServer, tmp_path: Path) -> None:
    job = GalaxyJob(tmp_path / "galaxy")
    status = job.run(server.url, "allowed-1")
    assert status["status"] == "complete", status
    assert job.output.read_text() == "one\ntwo\n"
    assert "refused" not in server.log()


def test_unknown_tool(server: LwrServer, tmp_path: Path) -> None:
    refused(server, GalaxyJob(tmp_path / "galaxy", tool_id="rm_tool"), "unknown-1", "tool_id")
    status, body = server.request("POST", "jobs", {"job_id": "raw-1", "tool_id": "rm_tool"})
    assert status == 403
    assert "rule 'tool_id'" in body["error"] and "'rm_tool'" in body["error"]


def test_unknown_tool_version(server: LwrServer, tmp_path: Path) -> None:
    job = GalaxyJob(tmp_path / "galaxy", tool_version="2.0")
    refused(server, job, "version-1", "tool_version")


def test_altered_tool_file(server: LwrServer, tmp_path: Path) -> None:
    job = GalaxyJob(tmp_path / "galaxy", wrapper="import os; os.system('id')\n")
    refused(server, job, "altered-1", "tool_file")
    assert not any((server.directory / "files" / "staging").rglob("wrapper.py"))


def test_command_not_matching(server: LwrServer, tmp_path: Path) -> None:
    job = GalaxyJob(tmp_path / "galaxy", command_suffix=" ; id > /tmp/owned")
    refused(server, job, "command-1", "command_validator")


def test_config_file_not_matching(server: LwrServer, tmp_path: Path) -> None:
    job = GalaxyJob(tmp_path / "galaxy", config_text="--lines $(id)")
    refused(server, job, "config-1", "configfile_validator")
    # refused as it arrived: the upload is gone, the job never got as far as submit
    assert not list((server.directory / "files" / "staging").rglob("configs/args"))


def test_job_directory_file_not_matching(server: LwrServer, tmp_path: Path) -> None:
    allowed = GalaxyJob(tmp_path / "allowed", tool_script="echo hello")
    assert allowed.run(server.url, "script-ok")["status"] == "complete"
    job = GalaxyJob(tmp_path / "galaxy", tool_script="rm -rf ~")
    refused(server, job, "script-1", "configfile_validator")
    assert "'tool_script.sh' does not match" in server.log()
    assert not list((server.directory / "files" / "staging").rglob("tool_script.sh"))


def test_without_a_whitelist_anything_runs(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory()
    job = GalaxyJob(tmp_path / "galaxy", tool_id="rm_tool", command_suffix=" && echo extra")
    assert job.run(server.url, "free-1")["status"] == "complete"
    assert job.output.read_text() == "one\ntwo\n"


def test_broken_toolbox_stops_the_server(lwr_server_factory: ServerFactory, tmp_path: Path) -> None:
    conf = tmp_path / "tool_conf.xml"
    conf.write_text('<toolbox><tool file="missing.xml"/></toolbox>')
    with pytest.raises(RuntimeError, match="tool_config_files: cannot read"):
        lwr_server_factory(app_options={"tool_config_files": str(conf)})
