"""One Galaxy-shaped job driven through the real ``pulsar.client``, as Galaxy's Pulsar runner does.

A tool directory with a wrapper script and a toolbox listing it (with validators), a config file,
one input and one output: the client uploads the tool file, the config file and the input,
rewrites the command line to the remote paths, submits, waits, and stages the output and the
metadata directory back (``finish_job``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRAPPER = """import sys
lines = int(open(sys.argv[1]).read().split()[1])
with open(sys.argv[2]) as source, open(sys.argv[3], "w") as out:
    out.writelines(source.readlines()[:lines])
"""

TOOL_XML = """<tool id="head_tool" version="1.0">
  <command>python3 wrapper.py $args $input $output</command>
  <validators>
    <command_validator>
      <literal value="python3"/>
      <tool_wrapper name="wrapper.py"/>
      <configfile name="args"/>
      <input/>
      <output/>
    </command_validator>
    <configfile_validator name="args">
      <parameter name="--lines"><integer/></parameter>
    </configfile_validator>
    <configfile_validator name="tool_script.sh">
      <literal value="echo"/>
      <regex value="[a-z]+"/>
    </configfile_validator>
  </validators>
</tool>
"""


def write_toolbox(directory: Path) -> Path:
    """The administrator's side: tools/head/ with the tool XML and wrapper, and tool_conf.xml."""
    tool_dir = directory / "tools" / "head"
    tool_dir.mkdir(parents=True)
    (tool_dir / "head.xml").write_text(TOOL_XML)
    (tool_dir / "wrapper.py").write_text(WRAPPER)
    conf = directory / "tool_conf.xml"
    conf.write_text('<toolbox tool_path="tools"><tool file="head/head.xml"/></toolbox>')
    return conf


@dataclass
class GalaxyJob:
    """The client's side of one job: Galaxy's files in ``directory``."""

    directory: Path
    tool_id: str = "head_tool"
    tool_version: str = "1.0"
    wrapper: str = WRAPPER
    config_text: str = "--lines 2"
    command_suffix: str = ""
    env: list[dict[str, str]] = field(default_factory=list)
    #: sent as a job directory file, as Galaxy sends the tool's command (``tool_script.sh``)
    tool_script: str | None = None
    #: the destination's private_token (a service user's own token works the same way)
    private_token: str | None = None

    def __post_init__(self) -> None:
        self.tool_dir = self.directory / "tool"
        self.working = self.directory / "working"
        self.metadata = self.directory / "metadata"
        for path in (self.tool_dir, self.working, self.metadata):
            path.mkdir(parents=True)
        (self.tool_dir / "wrapper.py").write_text(self.wrapper)
        self.config = self.working / "args"
        self.config.write_text(self.config_text)
        self.input = self.directory / "dataset_1.dat"
        self.input.write_text("one\ntwo\nthree\n")
        self.output = self.directory / "dataset_2.dat"
        self.job_files: list[str] = []
        if self.tool_script is not None:
            script = self.directory / "tool_script.sh"
            script.write_text(self.tool_script)
            self.job_files.append(str(script))

    def command_line(self) -> str:
        wrapper = self.tool_dir / "wrapper.py"
        return f"python3 {wrapper} {self.config} {self.input} {self.output}{self.command_suffix}"

    def run(self, url: str, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Submit, wait for the final status and stage back; returns the final status."""
        from pulsar.client.manager import build_client_manager
        from pulsar.client.staging.down import finish_job
        from pulsar.client.staging.models import ClientJobDescription, ClientOutputs, PulsarOutputs
        from pulsar.client.staging.up import submit_job

        manager = build_client_manager()
        destination = {"url": url}
        if self.private_token is not None:
            destination["private_token"] = self.private_token
        client = manager.get_client(destination, job_id=job_id)
        outputs = ClientOutputs(
            working_directory=str(self.working),
            metadata_directory=str(self.metadata),
            output_files=[str(self.output)],
        )
        description = ClientJobDescription(
            command_line=self.command_line(),
            tool=_Tool(self.tool_id, self.tool_version, str(self.tool_dir)),
            config_files=[str(self.config)],
            input_files=[str(self.input)],
            client_outputs=outputs,
            working_directory=str(self.working),
            metadata_directory=str(self.metadata),
            env=self.env,
            job_directory_files=self.job_files,
        )
        submit_job(client, description)
        deadline = time.monotonic() + timeout
        while True:
            status = client.raw_check_complete()
            if status["status"] in ("complete", "failed", "cancelled", "lost"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} not finished in {timeout}s: {status}")
            time.sleep(0.2)

        failed = finish_job(
            client=client,
            job_completed_normally=True,
            cleanup_job="always",
            client_outputs=outputs,
            pulsar_outputs=PulsarOutputs.from_status_response(status),
        )
        assert not failed, failed
        return dict(status)


@dataclass(frozen=True)
class _Tool:
    """What the client reads of Galaxy's tool object."""

    id: str
    version: str
    tool_dir: str
