"""Tool dependency resolution to Galaxy-style ``NAME/VERSION/env.sh`` files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lwr.errors import InvalidRequestError
from lwr.managers.dependencies import resolve


@pytest.fixture
def deps(tmp_path: Path) -> Path:
    root = tmp_path / "deps"
    for name, version in [
        ("samtools", "1.9"),
        ("samtools", "default"),
        ("bwa", "0.7.17"),
        ("py+x", "1.0-rc.1"),
    ]:
        env = root / name / version / "env.sh"
        env.parent.mkdir(parents=True)
        env.write_text(f"# {name} {version}\n")
    return root


def requirements(*items: dict[str, object]) -> dict[str, object]:
    return {"requirements": list(items)}


def test_resolves_name_and_version_to_env_sh(deps: Path) -> None:
    found = resolve(deps, requirements({"name": "samtools", "version": "1.9", "type": "package"}))
    assert found == [deps / "samtools" / "1.9" / "env.sh"]


def test_no_version_means_default(deps: Path) -> None:
    assert resolve(deps, requirements({"name": "samtools"})) == [
        deps / "samtools" / "default" / "env.sh"
    ]
    assert resolve(deps, requirements({"name": "samtools", "version": None})) == [
        deps / "samtools" / "default" / "env.sh"
    ]


def test_order_is_kept_and_missing_ones_are_skipped(
    deps: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lwr.managers.dependencies")
    found = resolve(
        deps,
        requirements(
            {"name": "bwa", "version": "0.7.17"},
            {"name": "samtools", "version": "9.9"},
            {"name": "py+x", "version": "1.0-rc.1"},
        ),
    )
    assert found == [deps / "bwa" / "0.7.17" / "env.sh", deps / "py+x" / "1.0-rc.1" / "env.sh"]
    assert "samtools/9.9" in caplog.text


def test_a_directory_named_env_sh_is_not_a_dependency(deps: Path) -> None:
    (deps / "odd" / "1" / "env.sh").mkdir(parents=True)
    assert resolve(deps, requirements({"name": "odd", "version": "1"})) == []


def test_non_package_requirements_are_ignored(deps: Path) -> None:
    assert (
        resolve(deps, requirements({"name": "samtools", "version": "1.9", "type": "container"}))
        == []
    )


def test_without_tool_dependency_dir_nothing_resolves(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lwr.managers.dependencies")
    assert resolve(None, requirements({"name": "samtools"})) == []
    assert "no tool_dependency_dir" in caplog.text


@pytest.mark.parametrize("description", [None, {}, {"requirements": []}, {"requirements": None}])
def test_empty_descriptions(deps: Path, description: dict[str, object] | None) -> None:
    assert resolve(deps, description) == []


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("../../etc", "1"),
        ("..", "1"),
        ("samtools", ".."),
        ("a/b", "1"),
        ("samtools", "1/../../x"),
        ("sam tools", "1"),
        ("x", "1;rm"),
        ("x\x00", "1"),
    ],
)
def test_unsafe_names_are_refused(deps: Path, name: str, version: str) -> None:
    with pytest.raises(InvalidRequestError):
        resolve(deps, requirements({"name": name, "version": version}))


def test_dots_inside_a_version_are_fine(deps: Path) -> None:
    """Only a whole '..' component climbs; '1..2' is an ordinary directory name."""
    env = deps / "tool" / "1..2" / "env.sh"
    env.parent.mkdir(parents=True)
    env.write_text("")
    assert resolve(deps, requirements({"name": "tool", "version": "1..2"})) == [env]


@pytest.mark.parametrize(
    "description",
    [
        ["samtools"],
        {"requirements": "samtools"},
        {"requirements": [{"version": "1"}]},
        {"requirements": ["x"]},
    ],
)
def test_malformed_descriptions_are_refused(deps: Path, description: object) -> None:
    with pytest.raises(InvalidRequestError):
        resolve(deps, description)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "description",
    [
        {"requirements": False},
        {"requirements": 0},
        {"requirements": [{"name": 5}]},
        {"requirements": [{"name": ["samtools"]}]},
        {"requirements": [{"name": "samtools", "version": 1.9}]},
        {"requirements": [{"name": "samtools", "type": None}]},
        {"requirements": [{"name": "x", "type": "set_environment", "version": 7}]},
    ],
)
def test_fields_of_other_json_types_are_refused(deps: Path, description: dict) -> None:
    """Found by fuzzing: these were coerced with str() or read as "none" and accepted."""
    with pytest.raises(InvalidRequestError):
        resolve(deps, description)


def test_null_requirements_and_other_types_are_accepted(deps: Path) -> None:
    assert resolve(deps, {"requirements": None}) == []
    assert resolve(deps, requirements({"name": "env", "type": "set_environment"})) == []
