"""The Galaxy tools the integration tests run through LWR, one copy per job environment.

Galaxy routes tools to environments by tool id, so every tool is written once per environment
with the environment's name in its id (``lwr_cat__rest``); the test then picks the route by
picking the id. Each tool exercises one part of the contract: one input and one output; several
outputs, one of them ``from_work_dir``; outputs discovered into a collection; a failure; a job
long enough to cancel (``LWR_TEST_SLEEP`` in the job's environment shortens it).
"""

from __future__ import annotations

from pathlib import Path

#: tool name -> (XML body inside <tool>, with {id} left for the per-environment id)
TOOLS: dict[str, str] = {
    "cat": """
    <command><![CDATA[
cat '$input1' > '$out_file1' && echo 'ran on LWR' >> '$out_file1'
    ]]></command>
    <inputs><param name="input1" type="data" format="txt"/></inputs>
    <outputs><data name="out_file1" format="txt"/></outputs>
""",
    "split": """
    <command><![CDATA[
head -n 1 '$input1' > '$first' &&
tail -n +2 '$input1' > rest_in_workdir.txt
    ]]></command>
    <inputs><param name="input1" type="data" format="txt"/></inputs>
    <outputs>
        <data name="first" format="txt"/>
        <data name="rest" format="txt" from_work_dir="rest_in_workdir.txt"/>
    </outputs>
""",
    "discover": """
    <command><![CDATA[
mkdir -p parts &&
split -l 1 -d '$input1' parts/part_ &&
for f in parts/part_*; do mv "\\$f" "\\$f.txt"; done &&
ls parts > '$report'
    ]]></command>
    <inputs><param name="input1" type="data" format="txt"/></inputs>
    <outputs>
        <data name="report" format="txt"/>
        <collection name="parts" type="list" label="parts">
            <discover_datasets pattern="__name_and_ext__" directory="parts"/>
        </collection>
    </outputs>
""",
    "fail": """
    <command><![CDATA[
echo 'partial output' > '$out_file1' &&
echo 'deliberate failure on LWR' >&2 &&
exit 3
    ]]></command>
    <inputs><param name="input1" type="data" format="txt"/></inputs>
    <outputs><data name="out_file1" format="txt"/></outputs>
""",
    "sleep": """
    <command><![CDATA[
touch lwr_test_started && sleep \\${LWR_TEST_SLEEP:-600} && cp '$input1' '$out_file1'
    ]]></command>
    <inputs><param name="input1" type="data" format="txt"/></inputs>
    <outputs><data name="out_file1" format="txt"/></outputs>
""",
}


def tool_id(tool: str, environment: str) -> str:
    return f"lwr_{tool}__{environment}"


def write_tools(directory: Path, environments: list[str]) -> str:
    """Write every tool for every environment into ``directory``; return the tool_conf.xml."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for environment in environments:
        for tool, body in TOOLS.items():
            identifier = tool_id(tool, environment)
            (directory / f"{identifier}.xml").write_text(
                f'<tool id="{identifier}" name="{tool} on {environment}" version="1.0.0" '
                f'profile="21.01">{body}</tool>\n'
            )
            entries.append(f'    <tool file="{identifier}.xml"/>')
    lines = "\n".join(entries)
    return (
        f'<?xml version="1.0"?>\n<toolbox tool_path="{directory}">\n'
        f'  <section id="lwr" name="LWR tests">\n{lines}\n  </section>\n</toolbox>\n'
    )
