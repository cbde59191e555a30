"""balancer.ini.sample agrees with the code: every default documented, the sample loads."""

from __future__ import annotations

import configparser
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from lwr.balancer.config import BALANCER_DEFAULTS, load_balancer_config, split_load_table
from lwr.balancer.drivers.ec2 import Ec2Driver
from lwr.balancer.drivers.local import LocalDriver

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "balancer.ini.sample"
_COMMENTED = re.compile(r"^#(?P<key>[a-z_]+)\s*=\s?(?P<value>.*)$")


def documented(section: str) -> dict[str, str]:
    found: dict[str, str] = {}
    inside = False
    for line in SAMPLE.read_text().splitlines():
        if line.startswith("["):
            inside = line.strip() == f"[{section}]"
            continue
        match = _COMMENTED.match(line) if inside else None
        if match:
            assert match["key"] not in found, f"{match['key']} documented twice in [{section}]"
            found[match["key"]] = match["value"].strip()
    return found


def test_every_option_is_documented_with_its_default() -> None:
    sections: Mapping[str, Mapping[str, str]] = {
        "balancer": BALANCER_DEFAULTS,
        "driver:local": LocalDriver.DEFAULTS,
        "driver:ec2": Ec2Driver.DEFAULTS,
    }
    for section, defaults in sections.items():
        assert documented(section) == dict(defaults), section


def test_every_option_has_a_comment_line_above_it() -> None:
    lines = SAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if _COMMENTED.match(line):
            above = lines[number - 1]
            assert above.startswith("#"), f"line {number + 1} ({line}) is not explained"


def test_the_sample_loads(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "balancer.ini")
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "server.ini").write_text("[app:main]\nuse = egg:lwr\n")
    config = load_balancer_config(tmp_path / "balancer.ini")
    assert config.poll_seconds == 30.0
    assert config.queue_prefix == "pulsar_" and config.setup_queue == "pulsar__setup"
    assert [(r.rate, r.min, r.max) for r in config.table.rows] == [
        (0.0, 1, 1),
        (0.2, 1, 4),
        (2.0, 2, 8),
    ]
    LocalDriver(config)  # the local section validates


def test_the_sample_sets_only_the_local_worker_template() -> None:
    _, rest = split_load_table(SAMPLE.read_text())
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(rest)
    assert dict(parser.items("balancer")) == {}
    assert dict(parser.items("driver:local")) == {"worker_template": "worker"}
    assert dict(parser.items("driver:ec2")) == {}
