"""The shipped samples agree with the code: every default documented, every section valid."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

from lwr.config import APP_DEFAULTS, DEFAULT_MANAGER, load_app_config, load_managers_ini
from lwr.errors import ConfigurationError
from lwr.registry import MANAGERS, lookup
from lwr.web.server import DEADLINE_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
SERVER_SAMPLE = ROOT / "server.ini.sample"
MANAGERS_SAMPLE = ROOT / "job_managers.ini.sample"

_COMMENTED_OPTION = re.compile(r"^#(?P<key>[a-z0-9_]+)\s*=\s?(?P<value>.*)$")


def app_section_lines() -> list[str]:
    """The raw lines of the [app:main] section of server.ini.sample."""
    lines, inside = [], False
    for line in SERVER_SAMPLE.read_text().splitlines():
        if line.startswith("["):
            inside = line.strip() == "[app:main]"
            continue
        if inside:
            lines.append(line)
    assert lines, "server.ini.sample has no [app:main] section"
    return lines


def test_server_sample_documents_every_default() -> None:
    documented: dict[str, str] = {}
    for line in app_section_lines():
        found = _COMMENTED_OPTION.match(line)
        if found:
            assert found["key"] not in documented, f"{found['key']} documented twice"
            documented[found["key"]] = found["value"].strip()
    assert documented == dict(APP_DEFAULTS)


def test_server_sample_sets_nothing_but_use_in_the_app_section() -> None:
    """Every app option stays commented, so the sample runs on the defaults the code defines."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SERVER_SAMPLE)
    assert dict(parser.items("app:main", raw=True)) == {"use": "egg:lwr"}


def test_server_sample_app_section_loads(tmp_path: Path) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SERVER_SAMPLE)
    raw = dict(parser.items("app:main", raw=True))
    config = load_app_config(raw, here=tmp_path)
    assert config.staging_directory == tmp_path.resolve() / "files" / "staging"


def test_server_sample_server_section_uses_lwr_runner_options_only() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SERVER_SAMPLE)
    options = dict(parser.items("server:main", raw=True))
    assert options.pop("use") == "egg:lwr#main"
    assert set(options) <= {"host", "port", "threads", "ssl_pem", *DEADLINE_DEFAULTS}


def test_server_sample_documents_every_deadline_with_its_default() -> None:
    text = SERVER_SAMPLE.read_text()
    for name, default in DEADLINE_DEFAULTS.items():
        assert re.search(rf"^#?{name} = {default:g}$", text, re.MULTILINE), name


def test_managers_sample_parses_and_validates() -> None:
    managers = load_managers_ini(MANAGERS_SAMPLE)
    assert managers[0].name == DEFAULT_MANAGER
    for manager in managers:
        backend = lookup("job manager type", MANAGERS, manager.type)
        backend.check_options(manager.name, manager.options)
        backend(manager.name, manager.options)  # option values are valid too


def commented_sections() -> list[tuple[str, str]]:
    """The sample's commented-out [manager:NAME] sections, uncommented, as (name, ini text)."""
    sections: list[tuple[str, str]] = []
    current: list[str] | None = None
    for line in MANAGERS_SAMPLE.read_text().splitlines():
        header = re.match(r"^#\[manager:(?P<name>[^\]]+)\]$", line)
        if header:
            current = [line[1:]]
            sections.append((header["name"], ""))
        elif current is not None and re.match(r"^#[a-z_]+\s*=", line):
            current.append(line[1:])
            sections[-1] = (sections[-1][0], "\n".join(current) + "\n")
        else:
            current = None
    return sections


@pytest.mark.parametrize(
    ("name", "text"), commented_sections(), ids=[n for n, _ in commented_sections()]
)
def test_commented_manager_examples_validate(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / "jm.ini"
    path.write_text(text)
    (manager,) = load_managers_ini(path)
    assert manager.name == name
    try:
        backend = lookup("job manager type", MANAGERS, manager.type)
    except ConfigurationError as exc:
        if manager.type in MANAGERS:  # its backend is not written yet, or needs an absent library
            pytest.skip(f"{manager.type}: {exc.message}")
        raise
    backend.check_options(manager.name, manager.options)


def test_the_sample_has_commented_examples() -> None:
    assert {"unqueued", "slurm", "drmaa"} <= {name for name, _ in commented_sections()}
