"""The Galaxy job configuration examples of docs/galaxy.md say the same thing in XML and YAML.

A reader copies whichever format their Galaxy uses; the YAML one once lacked the named-manager
destination and ``default_file_action`` that the XML one showed. Comments aside, both must
declare the same runner, the same default and the same destinations with the same parameters.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "galaxy.md"


def first_block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, f"no {language} example in {DOC}"
    return match.group(1)


def from_xml(text: str) -> dict[str, Any]:
    root = ET.fromstring(text)
    runners = {p.get("id"): p.get("load") for p in root.iter("plugin")}
    destinations = root.find("destinations")
    assert destinations is not None
    environments = {
        d.get("id"): {
            "runner": d.get("runner"),
            **{p.get("id"): (p.text or "").strip() for p in d.iter("param")},
        }
        for d in destinations.iter("destination")
    }
    return {"runners": runners, "default": destinations.get("default"), "envs": environments}


def from_yaml(text: str) -> dict[str, Any]:
    conf = yaml.safe_load(text)
    runners = {name: runner["load"] for name, runner in conf["runners"].items()}
    environments = {
        name: {key: str(value) for key, value in env.items()}
        for name, env in conf["execution"]["environments"].items()
    }
    return {"runners": runners, "default": conf["execution"]["default"], "envs": environments}


def test_the_xml_and_yaml_examples_are_equivalent() -> None:
    xml_conf, yaml_conf = from_xml(first_block("xml")), from_yaml(first_block("yaml"))
    assert xml_conf == yaml_conf
    # and they show what a reader needs: a named manager and a file action
    urls = [env["url"] for env in yaml_conf["envs"].values()]
    assert any("/managers/" in url for url in urls)
    assert any("default_file_action" in env for env in yaml_conf["envs"].values())
