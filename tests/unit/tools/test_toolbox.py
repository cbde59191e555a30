"""Toolbox files, tool XML, and the checks a job of a whitelisted tool goes through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lwr.errors import ConfigurationError, ToolNotAllowedError
from lwr.tools import ALLOW_ALL, ToolAuthorizer, ToolBox

TOOL_XML = """<tool id="cat_tool" version="{version}">
  <command>python $__tool_directory__/wrapper.py $args $input $output</command>
  <validators>
    <command_validator>
      <literal value="python"/>
      <tool_wrapper name="wrapper.py"/>
      <configfile name="args"/>
      <input/>
      <output/>
    </command_validator>
    <configfile_validator name="args">
      <parameter name="--lines"><integer/></parameter>
    </configfile_validator>
  </validators>
</tool>
"""


def write_toolbox(root: Path, versions: tuple[str, ...] = ("1.0",)) -> Path:
    for version in versions:
        tool_dir = root / "tools" / f"cat_{version}"
        tool_dir.mkdir(parents=True)
        (tool_dir / "cat.xml").write_text(TOOL_XML.format(version=version))
        (tool_dir / "wrapper.py").write_text("print('hello')\n")
    entries = "".join(f'<tool file="cat_{v}/cat.xml"/>' for v in versions)
    toolbox = root / "tool_conf.xml"
    toolbox.write_text(f'<toolbox tool_path="tools"><section id="s">{entries}</section></toolbox>')
    return toolbox


@pytest.fixture
def authorizer(tmp_path: Path) -> ToolAuthorizer:
    return ToolAuthorizer(ToolBox.load([write_toolbox(tmp_path, ("1.0", "2.0"))]))


def refused(rule: str) -> Any:
    return pytest.raises(ToolNotAllowedError, match=f"rule '{rule}'")


def test_load_resolves_tool_path_from_the_toolbox_directory(tmp_path: Path) -> None:
    toolbox = ToolBox.load([write_toolbox(tmp_path)])
    (tool,) = toolbox.versions("cat_tool")
    assert tool.version == "1.0"
    assert tool.tool_dir == (tmp_path / "tools" / "cat_1.0").resolve()
    assert set(tool.config_validators) == {"args"}
    assert len(toolbox) == 1


def test_tool_shed_guid_is_the_id(tmp_path: Path) -> None:
    write_toolbox(tmp_path)
    guid = "toolshed.example.org/repos/me/cat/cat_tool/1.0"
    conf = tmp_path / "shed_tool_conf.xml"
    conf.write_text(
        f'<toolbox tool_path="tools"><tool file="cat_1.0/cat.xml" guid="{guid}"/></toolbox>'
    )
    toolbox = ToolBox.load([conf])
    assert toolbox.versions(guid) and not toolbox.versions("cat_tool")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<toolbox><tool/></toolbox>", "no file attribute"),
        ("<toolbox><tool file='missing.xml'/></toolbox>", "cannot read"),
        ("<notatoolbox/>", "is not a <toolbox>"),
        ("<toolbox>", "not valid XML"),
    ],
)
def test_broken_toolbox_stops_the_server(tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "tool_conf.xml"
    conf.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        ToolBox.load([conf])


def test_unknown_validator_element_stops_the_server(tmp_path: Path) -> None:
    conf = write_toolbox(tmp_path)
    xml = tmp_path / "tools" / "cat_1.0" / "cat.xml"
    xml.write_text(xml.read_text().replace("<integer/>", "<anything/>"))
    with pytest.raises(ConfigurationError, match="unknown element <anything>"):
        ToolBox.load([conf])


def test_without_a_toolbox_everything_is_allowed() -> None:
    assert ToolAuthorizer().authorization(None, None) is ALLOW_ALL


def test_setup_rules(authorizer: ToolAuthorizer) -> None:
    authorizer.authorization("cat_tool", "2.0")
    authorizer.authorization("cat_tool", None)
    with refused("tool_id"):
        authorizer.authorization("rm_tool", "1.0")
    with refused("tool_id"):
        authorizer.authorization(None, None)
    with refused("tool_version"):
        authorizer.authorization("cat_tool", "3.0")


def test_tool_file_must_equal_the_servers_copy(authorizer: ToolAuthorizer, tmp_path: Path) -> None:
    check = authorizer.authorization("cat_tool", "1.0")
    upload = tmp_path / "upload"
    upload.write_text("print('hello')\n")
    check.check_tool_file("wrapper.py", upload)
    with refused("tool_file"):
        check.check_tool_file("other.py", upload)
    with refused("tool_file"):
        check.check_tool_file("../cat_2.0/wrapper.py", upload)
    upload.write_text("import os; os.system('rm -rf ~')\n")
    with refused("tool_file"):
        check.check_tool_file("wrapper.py", upload)


def test_config_files_and_command(authorizer: ToolAuthorizer, tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "configs").mkdir(parents=True)
    (job / "tool_files").mkdir()
    check = authorizer.authorization("cat_tool", "1.0")
    args = job / "configs" / "args"
    args.write_text("--lines 3")
    check.check_config_file(job, "args", args)
    (job / "configs" / "unvalidated").write_text("anything")
    check.check_config_file(job, "unvalidated", job / "configs" / "unvalidated")
    args.write_text("--lines 3; rm -rf ~")
    with refused("configfile_validator"):
        check.check_staged(job)
    command = (
        f"python {job}/tool_files/wrapper.py {job}/configs/args {job}/inputs/a {job}/outputs/b"
    )
    check.check_command(job, command)
    with refused("command_validator"):
        check.check_command(job, command + " && curl evil")


def test_a_tool_without_command_validator_runs_nothing(tmp_path: Path) -> None:
    conf = write_toolbox(tmp_path)
    xml = tmp_path / "tools" / "cat_1.0" / "cat.xml"
    xml.write_text('<tool id="cat_tool" version="1.0"><command>cat</command></tool>')
    check = ToolAuthorizer(ToolBox.load([conf])).authorization("cat_tool", "1.0")
    with refused("command_validator"):
        check.check_command(tmp_path, "cat")


def test_staged_tool_files_are_checked(authorizer: ToolAuthorizer, tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "tool_files" / "sub").mkdir(parents=True)
    (job / "tool_files" / "wrapper.py").write_text("print('hello')\n")
    check = authorizer.authorization("cat_tool", "1.0")
    check.check_staged(job)
    (job / "tool_files" / "sub" / "evil.sh").write_text("rm -rf ~")
    with refused("tool_file") as info:
        check.check_staged(job)
    assert "'sub/evil.sh'" in info.value.message
    assert info.value.status == 403


def test_job_directory_files_meet_the_validator_of_their_name(
    authorizer: ToolAuthorizer, tmp_path: Path
) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "args").write_text("--lines 2")
    check = authorizer.authorization("cat_tool", "1.0")
    check.check_staged(job, ["args"])
    (job / "args").write_text("--lines two")
    with refused("configfile_validator"):
        check.check_staged(job, ["args"])
    check.check_staged(job)  # not named by the manager: not a client file
