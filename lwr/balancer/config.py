"""balancer.ini: ``[balancer]``, ``[load table]`` and one ``[driver:NAME]`` section, typed.

The defaults live here (``BALANCER_DEFAULTS``; each driver class has its own ``DEFAULTS``) and
balancer.ini.sample documents each of them, which a unit test checks. Unknown keys are errors
naming the key, as everywhere in LWR.
"""

from __future__ import annotations

import configparser
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lwr.balancer.loadtable import LoadTable, parse_load_table
from lwr.balancer.signal import SIGNALS
from lwr.config import DEFAULT_MANAGER, _bool, _int, parse_seconds
from lwr.errors import ConfigurationError
from lwr.messaging.exchange import key_prefix

BALANCER_DEFAULTS: Mapping[str, str] = {
    "manager": DEFAULT_MANAGER,
    "amqp_key_prefix": "",
    "message_queue_url": "amqp://guest:guest@localhost:5672//",
    "poll_interval": "0.5",
    "signal": "rate",
    "driver": "local",
    "name": "lwr",
    "state_directory": "balancer-state",
    "drain_timeout": "600",
    "terminate_on_exit": "true",
    "metrics_host": "127.0.0.1",
    "metrics_port": "",
}

LOAD_TABLE = "load table"
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")


@dataclass(frozen=True)
class BalancerConfig:
    path: Path
    manager: str
    queue_prefix: str
    message_queue_url: str
    poll_interval: float
    signal: str
    table: LoadTable
    driver: str
    driver_options: Mapping[str, str]
    name: str
    state_directory: Path
    drain_timeout: float
    terminate_on_exit: bool
    metrics_host: str
    metrics_port: int | None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def poll_seconds(self) -> float:
        """``poll_interval`` is in minutes (as the GBrowse balancer had it); the loop wants s."""
        return self.poll_interval * 60.0

    @property
    def setup_queue(self) -> str:
        return f"{self.queue_prefix}_setup"

    @property
    def kill_queue(self) -> str:
        return f"{self.queue_prefix}_kill"


def load_balancer_config(path: Path) -> BalancerConfig:
    """Read and validate balancer.ini; every problem is a ConfigurationError naming the key."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read balancer config {str(path)!r}: {exc}") from None
    table_lines, rest = split_load_table(text)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(rest, source=str(path))
    except configparser.Error as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    if table_lines is None:
        raise ConfigurationError(f"{path}: no [{LOAD_TABLE}] section")
    values = _section(parser, "balancer", BALANCER_DEFAULTS)
    driver = values["driver"]
    driver_options = (
        dict(parser.items(f"driver:{driver}")) if parser.has_section(f"driver:{driver}") else {}
    )
    unknown = [s for s in parser.sections() if s != "balancer" and not s.startswith("driver:")]
    if unknown:
        raise ConfigurationError(f"{path}: unknown section(s) {', '.join(unknown)}")
    return _build(path, values, parse_load_table(table_lines), driver_options)


def _build(
    path: Path, values: Mapping[str, str], table: LoadTable, driver_options: Mapping[str, str]
) -> BalancerConfig:
    base = path.resolve().parent
    poll = _minutes(values["poll_interval"])
    if values["signal"] not in SIGNALS:
        raise ConfigurationError(f"signal must be one of {', '.join(SIGNALS)}")
    port = values["metrics_port"].strip()
    prefix = values["amqp_key_prefix"] or None
    return BalancerConfig(
        path=path.resolve(),
        manager=values["manager"],
        queue_prefix=key_prefix(values["manager"], prefix),
        message_queue_url=values["message_queue_url"],
        poll_interval=poll,
        signal=values["signal"],
        table=table,
        driver=values["driver"],
        driver_options=driver_options,
        name=_name(values["name"]),
        state_directory=(base / values["state_directory"]).resolve(),
        drain_timeout=parse_seconds(values["drain_timeout"], "drain_timeout"),
        terminate_on_exit=_bool(values["terminate_on_exit"], "terminate_on_exit"),
        metrics_host=values["metrics_host"],
        metrics_port=_int(port, "metrics_port") if port else None,
    )


def split_load_table(text: str) -> tuple[list[tuple[int, str]] | None, str]:
    """The numbered lines of ``[load table]`` and the file without them (blank lines instead,
    so configparser's line numbers stay right)."""
    table: list[tuple[int, str]] | None = None
    kept: list[str] = []
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        header = _SECTION.match(line)
        if header:
            inside = header["name"].strip().lower() == LOAD_TABLE
            if inside:
                table = table if table is not None else []
                kept.append("")
                continue
        if inside:
            assert table is not None
            table.append((number, line))
            kept.append("")
        else:
            kept.append(line)
    return table, "\n".join(kept) + "\n"


def _section(
    parser: configparser.ConfigParser, name: str, defaults: Mapping[str, str]
) -> dict[str, str]:
    values = dict(defaults)
    if parser.has_section(name):
        for key, value in parser.items(name):
            if key not in defaults:
                raise ConfigurationError(f"[{name}] has an unknown option {key!r}")
            values[key] = value.strip()
    return values


def check_driver_options(
    section: str, options: Mapping[str, str], defaults: Mapping[str, str]
) -> dict[str, str]:
    """A driver's options over its defaults; an unknown key is an error naming it."""
    values = dict(defaults)
    for key, value in options.items():
        if key not in defaults:
            raise ConfigurationError(f"[{section}] has an unknown option {key!r}")
        values[key] = value.strip()
    return values


def _minutes(value: str) -> float:
    try:
        minutes = float(value)
    except ValueError:
        raise ConfigurationError(f"poll_interval must be minutes, not {value!r}") from None
    if not math.isfinite(minutes) or minutes <= 0:
        raise ConfigurationError(f"poll_interval must be a positive number, not {value!r}")
    return minutes


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
        raise ConfigurationError(f"name must be 1-40 letters, digits, '-' or '_', not {value!r}")
    return value
