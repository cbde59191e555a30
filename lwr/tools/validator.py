"""Command and config-file validators: a tool's ``<command_validator>`` compiled to one regex.

A validator element lists what may appear, in order, separated by spaces (or ``separate_by``):
``literal`` (exact text), ``regex`` (the admin's own expression), ``integer``, ``float``,
``parameter name="--x"`` (the name, ``=`` or spaces, then its children), ``group`` (children
joined with nothing between them), ``tool_wrapper``/``configfile name=...`` (that file in the
job's ``tool_files/`` or ``configs/``), ``job_file name=...`` or ``job_file regex=...`` (a file
directly in the job directory, as Galaxy runs its ``tool_script.sh``), ``input`` and ``output``
(a path under the job's ``inputs/`` or ``outputs/``; ``output from_work_dir=...`` names one file
in ``working/``). Any element takes ``min``/``max`` repetition and
``single_quote``/``double_quote``.

The format is the one Pulsar documents, so a site's tool files move over unchanged; the matching is
stricter where Pulsar's is loose. A path element matches only characters that mean nothing to a
shell, in segments that are never ``.`` or ``..``, because a path matched as "anything after
``inputs/``" would let ``inputs/x; rm -rf ~`` or ``inputs/../../etc/passwd`` through. The
whole text must match (``fullmatch``), so a trailing newline cannot smuggle a second command.
Elements are compiled when the toolbox is loaded: an unknown tag is a start-up error, never a
surprise at the first job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from lwr.errors import ConfigurationError

#: one path segment: no whitespace, quotes or shell syntax, and never ``.`` or ``..``
_SEGMENT_CHARS = r"[A-Za-z0-9_.,+=@%-]"
_SEGMENT = rf"(?!\.\.?(?!{_SEGMENT_CHARS})){_SEGMENT_CHARS}+"
#: what a path element matches after its directory: one or more such segments
_PATH_TAIL = rf"{_SEGMENT}(?:{re.escape(os.sep)}{_SEGMENT})*"
_FLOAT = r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_TRUE = ("true", "yes", "1")


@dataclass(frozen=True)
class JobPaths:
    """The absolute directories of one job that path elements refer to."""

    root: str

    def sub(self, name: str) -> str:
        return os.path.join(self.root, name)


@dataclass(frozen=True)
class Validator:
    """One compiled validator: a description (for messages) and a matcher for a job."""

    name: str
    element: Element
    source: str

    def matches(self, paths: JobPaths, text: str) -> bool:
        """Whether ``text`` (a command line, a config file's content) is allowed for this job."""
        compiler = _Compiler(paths)
        pattern = re.compile(compiler.expression(self.element, default_sep=" +"))
        return pattern.fullmatch(text) is not None


def compile_validator(element: Element, name: str, source: str) -> Validator:
    """Check ``element`` once (unknown tags, bad counts, bad regexes) and keep it.

    Paths depend on the job, so the final regex is built per job; this dry run with a
    placeholder job proves now that it can be.
    """
    validator = Validator(name, element, source)
    try:
        re.compile(_Compiler(JobPaths("/job")).expression(element, default_sep=" +"))
    except (re.error, ValueError) as exc:
        raise ConfigurationError(f"{source}: invalid <{element.tag}> {name!r}: {exc}") from None
    return validator


class _Compiler:
    """Turns validator elements into a regex for one job, remembering which groups are paths."""

    def __init__(self, paths: JobPaths) -> None:
        self.paths = paths
        self._handlers: dict[str, Callable[[Element], str]] = {
            "literal": lambda e: re.escape(_value(e)),
            "regex": _value,
            "integer": lambda e: r"\d+",
            "float": lambda e: _FLOAT,
            "parameter": self._parameter,
            "group": lambda e: self.expression(e, default_sep=""),
            "tool_wrapper": lambda e: self._job_file("tool_files", e),
            "configfile": lambda e: self._job_file("configs", e),
            "job_file": self._job_root_file,
            "input": lambda e: self._under("inputs"),
            "output": self._output,
        }

    def expression(self, element: Element, default_sep: str) -> str:
        separator = _separator(element.get("separate_by"), default_sep)
        return separator.join(self._element(child, separator) for child in element)

    def _element(self, element: Element, separator: str) -> str:
        handler = self._handlers.get(str(element.tag))
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            raise ValueError(f"unknown element <{element.tag}> (known: {known})")
        regex = handler(element)
        if _flag(element, "single_quote"):
            regex = f"'{regex}'"
        if _flag(element, "double_quote"):
            regex = f'"{regex}"'
        return _repeat(regex, element, separator)

    def _parameter(self, element: Element) -> str:
        name = element.get("name")
        if not name:
            raise ValueError("<parameter> needs a name")
        return rf"{re.escape(name)}(?:=|\s+){self.expression(element, default_sep=' +')}"

    def _job_file(self, directory: str, element: Element) -> str:
        name = _value(element, "name")
        if not name:
            raise ValueError(f"<{element.tag}> needs a name")
        return re.escape(os.path.join(self.paths.sub(directory), name))

    def _job_root_file(self, element: Element) -> str:
        """A file directly in the job directory: ``name`` exactly, or ``regex`` for its name.

        Like ``<regex>``, the expression is the administrator's: it should match a plain file
        name (``galaxy_[0-9]+\\.ec``), not ``.*``, which would also match ``../``.
        """
        pattern = element.get("regex")
        if pattern is None:
            return self._job_file("", element)
        return re.escape(self.paths.root + os.sep) + f"(?:{pattern})"

    def _output(self, element: Element) -> str:
        from_work_dir = element.get("from_work_dir")
        if from_work_dir:
            return re.escape(os.path.join(self.paths.sub("working"), from_work_dir))
        return self._under("outputs")

    def _under(self, directory: str) -> str:
        return re.escape(self.paths.sub(directory) + os.sep) + _PATH_TAIL


def _repeat(regex: str, element: Element, separator: str) -> str:
    minimum = int(element.get("min", "1"))
    maximum = int(element.get("max", "1"))
    if minimum < 0 or maximum < 1 or minimum > maximum:
        raise ValueError(f"<{element.tag}> has min={minimum} max={maximum}")
    if minimum == 1 and maximum == 1:
        return regex
    first = f"(?:{regex})" + ("?" if minimum == 0 else "")
    rest = f"(?:{separator}{regex}){{{max(minimum - 1, 0)},{maximum - 1}}}"
    return first + rest


def _separator(value: str | None, default: str) -> str:
    if value is None:
        return default
    if value == "*spaces*":
        return " +"
    if value == "*whitespace*":
        return r"\s+"
    return re.escape(value)


def _value(element: Element, attribute: str = "value") -> str:
    value = element.get(attribute)
    if value is None:
        value = element.text or ""
    return value


def _flag(element: Element, attribute: str) -> bool:
    return (element.get(attribute) or "").lower() in _TRUE
