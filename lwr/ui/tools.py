"""The tools the dashboard's submit form may run: name -> command template, from the config.

The admin declares them (``ui_tools`` in server.ini, one ``name = command`` per line); a page
chooses one by name and supplies a file, never a command. Templates are rendered with
:meth:`string.Template.substitute`: ``$input`` is the uploaded file's path and ``$outputs``
the job's outputs directory, each shell-quoted, so a file name cannot add to the command; any
other ``$name`` is refused at start-up rather than half-rendered at submit.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping

from lwr.errors import ConfigurationError

#: the placeholders a template may use
PLACEHOLDERS = frozenset({"input", "outputs"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def parse_tools(raw: str | Mapping[str, str]) -> dict[str, str]:
    """``ui_tools``: lines of ``name = command`` (or a mapping, from app.yml) -> checked dict."""
    if isinstance(raw, Mapping):
        pairs = [(str(k), str(v)) for k, v in raw.items()]
    else:
        pairs = []
        for line in raw.splitlines():
            if not line.strip() or line.strip().startswith("#"):
                continue
            name, sep, command = line.partition("=")
            if not sep:
                raise ConfigurationError(f"ui_tools: expected 'name = command', got {line!r}")
            pairs.append((name.strip(), command.strip()))
    tools: dict[str, str] = {}
    for name, command in pairs:
        if not _NAME.match(name):
            raise ConfigurationError(f"ui_tools: invalid tool name {name!r}")
        if name in tools:
            raise ConfigurationError(f"ui_tools: tool {name!r} is declared twice")
        _check_template(name, command)
        tools[name] = command
    return tools


def _check_template(name: str, command: str) -> None:
    if not command:
        raise ConfigurationError(f"ui_tools: tool {name!r} has no command")
    try:
        used = {
            m.group("named") or m.group("braced")
            for m in string.Template.pattern.finditer(command)
            if m.group("invalid") is None and (m.group("named") or m.group("braced"))
        }
        string.Template(command).substitute({key: "x" for key in PLACEHOLDERS})
    except (KeyError, ValueError) as exc:
        raise ConfigurationError(
            f"ui_tools: tool {name!r}: bad placeholder {exc} (use $input, $outputs; $$ for $)"
        ) from None
    if "input" not in used:
        raise ConfigurationError(f"ui_tools: tool {name!r} never uses $input")


def command_line(template: str, input_path: str, outputs: str) -> str:
    """The command of one submit: the template with the paths shell-quoted."""
    return string.Template(template).substitute(
        input=shlex.quote(input_path), outputs=shlex.quote(outputs)
    )
