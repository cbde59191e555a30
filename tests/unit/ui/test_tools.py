"""ui_tools: parsing and the rendering of a command, where a file name must stay one argument."""

from __future__ import annotations

import shlex

import pytest

from lwr.errors import ConfigurationError
from lwr.ui.tools import command_line, parse_tools


def test_lines_become_tools() -> None:
    raw = "\n  count = wc -l $input\n  # a comment\n  copy = cp ${input} $outputs/x\n"
    assert parse_tools(raw) == {"count": "wc -l $input", "copy": "cp ${input} $outputs/x"}
    assert parse_tools("") == {}
    assert parse_tools({"count": "wc -l $input"}) == {"count": "wc -l $input"}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("count wc -l $input", "name = command"),
        ("count = wc -l $input\ncount = cat $input", "twice"),
        ("9count = wc $input", "invalid tool name"),
        ("count =", "no command"),
        ("count = wc -l $input $other", "bad placeholder"),
        ("count = echo $", "bad placeholder"),
        ("count = wc -l data.txt", "never uses $input"),
    ],
)
def test_bad_declarations_fail_at_start_up(raw: str, why: str) -> None:
    with pytest.raises(ConfigurationError, match=why.replace("$", r"\$")):
        parse_tools(raw)


def test_paths_are_shell_quoted() -> None:
    path = "/jobs/1/inputs/a'b; rm -rf ~ $(id).txt"
    command = command_line("cat $input > $outputs/out", path, "/jobs/1/out puts")
    assert shlex.split(command) == ["cat", path, ">", "/jobs/1/out puts/out"]
