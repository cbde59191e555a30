"""The whitelist itself: Galaxy toolbox files (``tool_conf.xml``) and the tool XML they list.

A toolbox file is ``<toolbox tool_path="DIR">`` holding ``<tool file="REL.xml"/>`` elements,
directly or inside ``<section>`` elements as Galaxy's own ``tool_conf.xml`` has them. A tool
installed from a Tool Shed carries ``guid="..."``, which is then its id (what Galaxy sends). A
relative ``tool_path`` (or a missing one) is taken from the toolbox file's directory, so a toolbox
means the same whatever directory the server starts in.

Everything is read and compiled once at start-up and kept in memory: a broken toolbox, a tool
XML that cannot be parsed or a validator with an unknown element stops the server with a message
naming the file, and later checks never touch the tool XML again.

The XML is parsed with the standard library's ElementTree rather than ``defusedxml``: these files
belong to the server's administrator, like ``server.ini``; nothing a client sends is ever parsed as
XML (uploaded config files are matched as text). Python's expat also refuses the entity-expansion
bombs defusedxml guards against, and ElementTree never fetches external entities.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from lwr.errors import ConfigurationError
from lwr.tools.validator import Validator, compile_validator

log = logging.getLogger(__name__)

#: the version a tool XML without a ``version`` attribute has (Galaxy's default)
DEFAULT_TOOL_VERSION = "1.0.0"


@dataclass(frozen=True)
class Tool:
    """One whitelisted tool: where its files are and what its jobs may do."""

    id: str
    version: str
    path: Path
    command_validator: Validator | None = None
    config_validators: dict[str, Validator] = field(default_factory=dict)

    @property
    def tool_dir(self) -> Path:
        """The directory whose files a job of this tool may upload (as ``tool`` files)."""
        return self.path.parent

    def describe(self) -> str:
        return f"tool {self.id!r} version {self.version!r} ({self.path})"


class ToolBox:
    """Every tool of the configured toolbox files, by id."""

    def __init__(self, tools: Iterable[Tool], sources: Iterable[Path] = ()) -> None:
        self.sources = tuple(sources)
        self._by_id: dict[str, list[Tool]] = {}
        for tool in tools:
            self._by_id.setdefault(tool.id, []).append(tool)

    @classmethod
    def load(cls, paths: Iterable[Path]) -> ToolBox:
        """Read the toolbox files in order; any problem is a :class:`ConfigurationError`."""
        paths = tuple(paths)
        tools = [tool for path in paths for tool in _load_toolbox(path)]
        toolbox = cls(tools, paths)
        log.info("tool whitelist: %d tool(s) from %s", len(tools), ", ".join(str(p) for p in paths))
        return toolbox

    def versions(self, tool_id: str) -> list[Tool]:
        """The whitelisted versions of ``tool_id`` (empty when the id is unknown)."""
        return list(self._by_id.get(tool_id, ()))

    def __len__(self) -> int:
        return sum(len(tools) for tools in self._by_id.values())


def _load_toolbox(path: Path) -> list[Tool]:
    root = _parse(path)
    if root.tag != "toolbox":
        raise ConfigurationError(f"tool_config_files: {path} is not a <toolbox> file")
    tool_path = Path(os.path.expanduser(root.get("tool_path") or "."))
    base = (path.parent / tool_path).resolve()
    tools = []
    for element in root.iter("tool"):
        relative = element.get("file")
        if not relative:
            raise ConfigurationError(f"{path}: a <tool> element has no file attribute")
        tool = load_tool((base / relative).resolve(), guid=element.get("guid"))
        tools.append(tool)
    return tools


def load_tool(path: Path, guid: str | None = None) -> Tool:
    """One tool XML: its id (or the Tool Shed ``guid``), version and validators."""
    root = _parse(path)
    tool_id = guid or root.get("id")
    if not tool_id:
        raise ConfigurationError(f"{path}: the tool has no id")
    command: Validator | None = None
    configs: dict[str, Validator] = {}
    for element in root.findall("./validators/*"):
        if element.tag == "command_validator":
            if command is not None:
                raise ConfigurationError(f"{path}: more than one <command_validator>")
            command = compile_validator(element, "command_validator", str(path))
        elif element.tag == "configfile_validator":
            name = element.get("name")
            if not name:
                raise ConfigurationError(f"{path}: a <configfile_validator> has no name")
            configs[name] = compile_validator(element, f"configfile_validator {name}", str(path))
        else:
            raise ConfigurationError(
                f"{path}: unknown <validators> element <{element.tag}> "
                "(known: command_validator, configfile_validator)"
            )
    if command is None:
        log.warning(
            "tool whitelist: %s declares no <command_validator>; every job of it is refused",
            path,
        )
    version = root.get("version") or DEFAULT_TOOL_VERSION
    return Tool(str(tool_id), version, path, command, configs)


def _parse(path: Path) -> ElementTree.Element:
    try:
        return ElementTree.parse(path).getroot()
    except OSError as exc:
        raise ConfigurationError(f"tool_config_files: cannot read {path}: {exc}") from None
    except ElementTree.ParseError as exc:
        raise ConfigurationError(f"tool_config_files: {path} is not valid XML: {exc}") from None
