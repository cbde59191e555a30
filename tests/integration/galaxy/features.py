"""The configuration of the environments that check LWR features through Galaxy.

``rest_metrics``: LWR runs Galaxy's job metrics plugins around each job
(``job_metrics_config_file``) and Galaxy shows the ones its own configuration enables — the same
plugins, on both sides (:data:`GALAXY_JOB_METRICS` goes into the session Galaxy's ``galaxy.yml``;
it adds nothing to the commands Galaxy sends a Pulsar destination, so the other environments are
unaffected). The destination sets :data:`METRICS_MARK` in its ``env``; the ``env`` plugin must
report it.

``rest_tools``: LWR's ``tool_config_files`` whitelists one test tool, ``cat``, with validators
for what Galaxy 26.1 really sends for it (the ``tool_script.sh`` wrapper, see docs/tools.md);
every other tool of that environment is refused at setup.
"""

from __future__ import annotations

from typing import Any

from tests.integration.galaxy.tools import TOOLS, tool_id

#: the variable the metrics destination sets (Galaxy's ``env``) and the env plugin records
METRICS_MARK = ("LWR_METRICS_MARK", "from-galaxy")

#: Galaxy's plugins, as ``job_metrics`` in galaxy.yml (Galaxy shows only what it enables)
GALAXY_JOB_METRICS: list[dict[str, Any]] = [
    {"type": "core"},
    {"type": "cpuinfo", "verbose": False},
    {"type": "meminfo"},
    {"type": "uname"},
    {"type": "env", "variables": METRICS_MARK[0]},
    {"type": "hostname"},
    {"type": "cgroup"},
]

#: the same plugins on LWR's side (its ``job_metrics_config_file``)
LWR_JOB_METRICS = f"""<?xml version="1.0"?>
<job_metrics>
  <core/>
  <cpuinfo verbose="false"/>
  <meminfo/>
  <uname/>
  <env variables="{METRICS_MARK[0]}"/>
  <hostname/>
  <cgroup/>
</job_metrics>
"""

#: the whitelisted tool's validators: Galaxy's wrapper command line, and the tool's command as
#: Galaxy writes it into tool_script.sh (cat's command in :mod:`tools`)
CAT_VALIDATORS = """
    <validators>
      <command_validator>
        <literal value="/bin/bash"/>
        <job_file name="tool_script.sh"/>
        <literal>&gt; '../metadata/tool_stdout' 2&gt; '../metadata/tool_stderr'; return_code=$?; echo $return_code &gt;</literal>
        <group>
          <job_file regex="galaxy_[0-9]+\\.ec"/>
          <literal>; sh -c "exit $return_code"</literal>
        </group>
      </command_validator>
      <configfile_validator name="tool_script.sh" separate_by="*whitespace*">
        <literal>#!/bin/bash

# The following block can be used by the job system
# to ensure this script is runnable before actually attempting
# to run it.
if [ -n "$ABC_TEST_JOB_SCRIPT_INTEGRITY_XYZ" ]; then
    exit 42
fi
set -e</literal>
        <literal value="cat"/>
        <input single_quote="true"/>
        <literal value="&gt;"/>
        <output single_quote="true"/>
        <literal>&amp;&amp; echo 'ran on LWR' &gt;&gt;</literal>
        <output single_quote="true"/>
      </configfile_validator>
    </validators>
"""  # noqa: E501


def whitelist_files(environment: str) -> dict[str, str]:
    """LWR's toolbox for ``environment``: Galaxy's ``cat`` tool of it, with validators."""
    identifier = tool_id("cat", environment)
    tool = (
        f'<tool id="{identifier}" name="cat" version="1.0.0" profile="21.01">'
        f"{TOOLS['cat']}{CAT_VALIDATORS}</tool>\n"
    )
    toolbox = f'<toolbox tool_path="tools">\n  <tool file="{identifier}.xml"/>\n</toolbox>\n'
    return {"tool_conf.xml": toolbox, f"tools/{identifier}.xml": tool}
