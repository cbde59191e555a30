"""Each validator element, matched against command lines and config files of one job."""

from __future__ import annotations

from xml.etree.ElementTree import fromstring

import pytest

from lwr.errors import ConfigurationError
from lwr.tools.validator import JobPaths, compile_validator

JOB = "/srv/lwr/staging/42"
PATHS = JobPaths(JOB)


def matches(xml: str, text: str) -> bool:
    return compile_validator(fromstring(xml), "command_validator", "test").matches(PATHS, text)


def cv(*children: str, **attributes: str) -> str:
    attrs = "".join(f' {k}="{v}"' for k, v in attributes.items())
    return f"<command_validator{attrs}>{''.join(children)}</command_validator>"


def test_literals_joined_by_spaces() -> None:
    xml = cv('<literal value="python"/>', "<literal>setup.py</literal>")
    assert matches(xml, "python setup.py")
    assert matches(xml, "python   setup.py")
    assert not matches(xml, "pythonsetup.py")
    assert not matches(xml, "python setup.py; rm -rf ~")
    assert not matches(xml, "python setup.py\nrm -rf ~")  # fullmatch: no trailing command


def test_literal_is_not_a_regex() -> None:
    assert matches(cv('<literal value="a.b"/>'), "a.b")
    assert not matches(cv('<literal value="a.b"/>'), "axb")


def test_regex_and_its_repetition() -> None:
    xml = cv('<literal value="t"/>', '<regex value="[a-z]" max="2"/>')
    assert matches(xml, "t a")
    assert matches(xml, "t a b")
    assert not matches(xml, "t a b c")
    assert not matches(xml, "t 1")


def test_min_zero_makes_an_element_optional() -> None:
    xml = cv(
        '<literal value="t"/>',
        '<parameter name="--n" min="0"><literal value="4" double_quote="true"/></parameter>',
    )
    assert matches(xml, 't --n "4"')
    assert matches(xml, "t ")
    assert not matches(xml, "t --n=5")


def test_parameter_with_equals_or_spaces() -> None:
    xml = cv('<literal value="t"/>', '<parameter name="--sd"><integer/></parameter>')
    assert matches(xml, "t --sd 4")
    assert matches(xml, "t --sd=4")
    assert not matches(xml, "t --sd=4.0")
    assert not matches(xml, "t --sd=$(id)")


def test_float() -> None:
    xml = cv('<parameter name="--x"><float/></parameter>')
    for good in ("4", "5.0", "4e10", "-1.0e10", "-.0e10"):
        assert matches(xml, f"--x={good}"), good
    assert not matches(xml, "--x=cat")


def test_quotes() -> None:
    single = cv('<parameter name="--a"><literal value="4" single_quote="true"/></parameter>')
    assert matches(single, "--a '4'")
    assert not matches(single, "--a 4")
    assert not matches(single, '--a "4"')
    double = cv('<parameter name="--a"><literal value="4" double_quote="true"/></parameter>')
    assert matches(double, '--a="4"')
    assert not matches(double, "--a='4'")


def test_group_and_separate_by() -> None:
    group = cv(
        '<literal value="t"/><group><literal value="a"/><regex value="[b-z]+"/>'
        '<literal value="a"/></group>'
    )
    assert matches(group, "t abba")
    assert not matches(group, "t abb")
    separated = cv(
        '<literal value="t"/><group separate_by="x"><literal value="a"/>'
        '<regex value="[b-z]+"/><literal value="a"/></group>'
    )
    assert matches(separated, "t axbxa")
    assert not matches(separated, "t abba")


def test_whitespace_separator() -> None:
    xml = cv('<literal value="a"/><literal value="b"/>', separate_by="*whitespace*")
    assert matches(xml, "a\tb")
    assert not matches(cv('<literal value="a"/><literal value="b"/>'), "a\tb")


def test_tool_wrapper_and_configfile_name_one_file_of_the_job() -> None:
    xml = cv(
        '<literal value="python"/>',
        '<tool_wrapper name="w.py"/>',
        '<parameter name="--config"><configfile name="c1"/></parameter>',
    )
    assert matches(xml, f"python {JOB}/tool_files/w.py --config {JOB}/configs/c1")
    assert not matches(xml, f"python w.py --config {JOB}/configs/c1")
    assert not matches(xml, f"python {JOB}/tool_files/w.py --config {JOB}/configs/c1X")
    assert not matches(xml, f"python ../{JOB}/tool_files/w.py --config {JOB}/configs/c1")


def test_inputs_and_outputs_stay_in_their_directories() -> None:
    xml = cv('<literal value="t"/>', "<input/>", "<output/>")
    assert matches(xml, f"t {JOB}/inputs/dataset_1.dat {JOB}/outputs/dataset_2.dat")
    assert matches(xml, f"t {JOB}/inputs/d_files/sub/x.txt {JOB}/outputs/o")
    refused = [
        f"t {JOB}/inputs/../../../etc/passwd {JOB}/outputs/o",
        f"t {JOB}/inputs/./x {JOB}/outputs/o",
        f"t {JOB}/inputs/a/.. {JOB}/outputs/o",
        f"t {JOB}/outputs/o {JOB}/inputs/a",
        f"t {JOB}/inputs/a;id {JOB}/outputs/o",
        f"t {JOB}/inputs/a$(id) {JOB}/outputs/o",
        f"t {JOB}/inputs/ {JOB}/outputs/o",
        f"t ../{JOB}/inputs/a {JOB}/outputs/o",
    ]
    for command in refused:
        assert not matches(xml, command), command


def test_repeated_inputs() -> None:
    xml = cv('<literal value="cat"/>', '<input max="3"/>')
    assert matches(xml, f"cat {JOB}/inputs/a {JOB}/inputs/b {JOB}/inputs/c")
    assert not matches(xml, f"cat {JOB}/inputs/a {JOB}/inputs/../x")


def test_output_from_work_dir() -> None:
    xml = cv('<literal value="t"/>', "<output/>", '<output from_work_dir="junctions.bed"/>')
    assert matches(xml, f"t {JOB}/outputs/o {JOB}/working/junctions.bed")
    assert not matches(xml, f"t {JOB}/outputs/o {JOB}/working/other.bed")


def test_configfile_validator_content() -> None:
    xml = (
        '<configfile_validator name="c1"><regex value="\\s*"/><parameter name="--option1">'
        '<literal value="Hello" single_quote="true"/></parameter><regex value="\\s*"/>'
        "</configfile_validator>"
    )
    assert matches(xml, "\n   --option1='Hello' \n")
    assert not matches(xml, "\n   --option1='Bye' \n")


@pytest.mark.parametrize(
    "child",
    [
        '<shell value="x"/>',
        '<regex value="("/>',
        '<literal value="a" min="2" max="1"/>',
        "<parameter><integer/></parameter>",
        "<tool_wrapper/>",
    ],
)
def test_bad_validators_are_refused_at_load(child: str) -> None:
    with pytest.raises(ConfigurationError, match="test: invalid <command_validator>"):
        compile_validator(fromstring(cv(child)), "command_validator", "test")


def test_job_file_names_a_file_directly_in_the_job_directory() -> None:
    xml = cv(
        '<literal value="/bin/bash"/>',
        '<job_file name="tool_script.sh"/>',
        '<literal value="&gt;"/>',
        '<job_file regex="galaxy_[0-9]+\\.ec"/>',
    )
    assert matches(xml, f"/bin/bash {JOB}/tool_script.sh > {JOB}/galaxy_12.ec")
    assert not matches(xml, f"/bin/bash /tmp/tool_script.sh > {JOB}/galaxy_12.ec")
    assert not matches(xml, f"/bin/bash {JOB}/configs/tool_script.sh > {JOB}/galaxy_12.ec")
    assert not matches(xml, f"/bin/bash {JOB}/tool_script.sh > {JOB}/galaxy_x.ec")
    assert not matches(xml, f"/bin/bash {JOB}/tool_script.sh > {JOB}/sub/galaxy_1.ec")
