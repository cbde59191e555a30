"""File-action rules: which action applies to a path of a given type.

The rules come in every shape Galaxy's client produces: an admin's YAML or JSON file (a ``paths:``
list, or a bare list), or the dictionary the client's action mapper sends with a job
(``remote_staging["action_mapper"]``: ``default_action``, ``files_endpoint``, ``ssh_*``, ``paths``).
They are validated once, at load: a malformed rule is refused with its index and what is wrong,
instead of failing later on the first path that reaches it.

Matching follows the client exactly (first matching rule wins; a prefix is a plain string prefix of
the absolute path; globs are :func:`fnmatch.fnmatch`, whose ``*`` also crosses ``/``; regexes are
anchored at the start only), because client and server must agree on who moves each file.

Pure functions and frozen values only; imports nothing but :mod:`lwr.errors` and this package.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from lwr.errors import ConfigurationError, LwrError
from lwr.staging.actions import ACTION_SPECS, COPIED_EVEN_IF_NONE, UNSET, Action

#: every path type the client knows
ALL_PATH_TYPES = (
    "input",
    "config",
    "tool",
    "workdir",
    "jobdir",
    "metadata",
    "output",
    "output_workdir",
    "output_metadata",
    "output_jobdir",
    "unstructured",
    "container",
)
#: the types a rule applies to when it names none (and that the default action covers)
DEFAULT_PATH_TYPES = ALL_PATH_TYPES[:10]

MATCH_TYPES = ("prefix", "glob", "regex", "path_type_only")
_RULE_KEYS = frozenset({"path", "match_type", "path_types", "action", "depth"})
_TOP_KEYS = frozenset(
    {"default_action", "files_endpoint", "ssh_key", "ssh_user", "ssh_host", "ssh_port", "paths"}
)
_EXTRA_KEYS = frozenset(k for spec in ACTION_SPECS.values() for k in spec.required + spec.optional)


@dataclass(frozen=True)
class Rule:
    """One validated rule: where it applies and the action it gives."""

    action: Action
    match_type: str
    path: str | None
    path_types: frozenset[str]
    depth: int = 0
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, path: str | None, path_type: str) -> bool:
        """Whether this rule covers ``path`` (already absolute and normalised) of ``path_type``."""
        if path_type not in self.path_types:
            return False
        if self.match_type == "path_type_only":
            return True
        if path is None or self.path is None:
            return False
        if self.match_type == "prefix":
            return path.startswith(self.path)
        if self.match_type == "glob":
            return fnmatch.fnmatch(path, self.path)
        assert self._regex is not None
        return self._regex.match(path) is not None


@dataclass(frozen=True)
class RuleSet:
    """A validated action configuration: the rules plus the client-wide defaults."""

    rules: tuple[Rule, ...] = ()
    default_action: str = "transfer"
    files_endpoint: str | None = None
    ssh: Mapping[str, Any] = field(default_factory=dict)

    def action_for(self, path: str | None, path_type: str) -> Action:
        """The action for ``path`` of ``path_type``, decided exactly as the client decides it."""
        normalized = os.path.abspath(path) if path is not None else None
        for rule in self.rules:
            if rule.matches(normalized, path_type):
                action = rule.action
                break
        else:
            default = self.default_action if path_type in DEFAULT_PATH_TYPES else "none"
            action = Action(default)
        if action.action_type == "none" and path_type in COPIED_EVEN_IF_NONE:
            return Action("copy")
        return action

    def url_for(self, path: str, path_type: str) -> str:
        """The ``files_endpoint`` URL of ``path``, built as the client builds it."""
        if not self.files_endpoint:
            raise ConfigurationError("remote_transfer needs a files_endpoint, and none was given")
        joiner = "&" if "?" in self.files_endpoint else "?"
        return self.files_endpoint + joiner + urlencode({"path": path, "file_type": path_type})

    @property
    def has_remote_actions(self) -> bool:
        """Whether any path at all could be staged by the server."""
        return self.has_remote_actions_for(ALL_PATH_TYPES)

    def has_remote_actions_for(self, path_types: Iterable[str]) -> bool:
        """Whether some path of one of ``path_types`` could be staged by the server."""
        wanted = set(path_types)
        if Action(self.default_action).is_remote and wanted & set(DEFAULT_PATH_TYPES):
            return True
        return any(rule.action.is_remote and wanted & rule.path_types for rule in self.rules)


def load_rules(
    source: str | Mapping[str, Any] | Sequence[Any] | None,
    *,
    error: type[LwrError] = ConfigurationError,
    origin: str = "file actions",
) -> RuleSet:
    """Validate a rule configuration (YAML/JSON text, a parsed dict or a bare list of rules).

    ``error`` is the class raised for a malformed configuration: :class:`ConfigurationError` when
    an admin wrote it, :class:`~lwr.errors.InvalidRequestError` when a client sent it with a job.
    ``origin`` names the source in messages (a file name, ``remote_staging.action_mapper``…).
    """
    if source is None:
        return RuleSet()
    if isinstance(source, str):
        source = _parse_text(source, error, origin)
    if isinstance(source, Sequence) and not isinstance(source, str):
        source = {"paths": list(source)}
    if not isinstance(source, Mapping):
        raise error(f"{origin}: expected a mapping with 'paths' or a list of rules")
    unknown = sorted(str(k) for k in source if k not in _TOP_KEYS)
    if unknown:
        raise error(f"{origin}: unknown key(s) {', '.join(unknown)}")
    default_action = source.get("default_action") or "transfer"
    if default_action not in ACTION_SPECS:
        raise error(f"{origin}: unknown default_action {default_action!r}{_known_actions()}")
    paths = source.get("paths") or []
    if not isinstance(paths, list):
        raise error(f"{origin}: 'paths' must be a list of rules")
    rules = tuple(_rule(entry, index, error, origin) for index, entry in enumerate(paths))
    ssh = {k: source[k] for k in ("ssh_key", "ssh_user", "ssh_host", "ssh_port") if k in source}
    return RuleSet(rules, default_action, source.get("files_endpoint") or None, ssh)


def load_rules_file(path: str | os.PathLike[str]) -> RuleSet:
    """Read and validate an admin's rule file (YAML or JSON)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read file actions {str(path)!r}: {exc}") from exc
    return load_rules(text, origin=str(path))


def _parse_text(text: str, error: type[LwrError], origin: str) -> Any:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML flow style is not always JSON; let YAML decide
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{origin}: not valid YAML or JSON: {exc}") from None


def _rule(entry: Any, index: int, error: type[LwrError], origin: str) -> Rule:
    where = f"{origin}: rule {index}"
    if not isinstance(entry, Mapping):
        raise error(f"{where}: expected a mapping, got {type(entry).__name__}")
    action_type = entry.get("action", "transfer")
    spec = ACTION_SPECS.get(action_type) if isinstance(action_type, str) else None
    if spec is None:
        raise error(f"{where}: unknown action {action_type!r}{_known_actions()}")
    allowed = _RULE_KEYS | set(spec.required) | set(spec.optional)
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        extra = [k for k in unknown if k in _EXTRA_KEYS]
        hint = f" (not options of action {action_type!r})" if extra else ""
        raise error(f"{where}: unknown key(s) {', '.join(unknown)}{hint}")
    params: dict[str, str] = {}
    for key in spec.required:
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            raise error(f"{where}: action {action_type!r} requires {key!r}")
        params[key] = value
    for key in spec.optional:
        value = entry.get(key, UNSET)
        if value is not None and value != UNSET:
            params[key] = str(value)
    path = entry.get("path")
    match_type = entry.get("match_type", "prefix" if path is not None else "path_type_only")
    if match_type not in MATCH_TYPES:
        raise error(f"{where}: unknown match_type {match_type!r} (known: {', '.join(MATCH_TYPES)})")
    regex = None
    if path is None:
        if match_type != "path_type_only":
            raise error(f"{where}: match_type {match_type!r} needs a 'path'")
    elif not isinstance(path, str) or not path:
        raise error(f"{where}: 'path' must be a non-empty string")
    elif match_type == "path_type_only":
        path = None  # as the client does: this match type ignores any path it is given
    if path is not None and match_type == "prefix":
        path = os.path.abspath(path)
    elif path is not None and match_type == "regex":
        try:
            regex = re.compile(path)
        except re.error as exc:
            raise error(f"{where}: invalid regex {path!r}: {exc}") from None
    path_types = _path_types(entry.get("path_types"), where, error)
    depth = _depth(entry.get("depth", 0), where, error)
    return Rule(Action(action_type, params), match_type, path, path_types, depth, regex)


def _path_types(value: Any, where: str, error: type[LwrError]) -> frozenset[str]:
    if value is None:
        return frozenset(DEFAULT_PATH_TYPES)
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise error(f"{where}: 'path_types' must be a comma-separated string or a list of strings")
    types: set[str] = set()
    for item in (i.strip() for i in items):
        if item == "*any*":
            types.update(ALL_PATH_TYPES)
        elif item == "*defaults*":
            types.update(DEFAULT_PATH_TYPES)
        elif item in ALL_PATH_TYPES:
            types.add(item)
        else:
            known = ", ".join(ALL_PATH_TYPES)
            raise error(f"{where}: unknown path type {item!r} (known: {known}, *any*, *defaults*)")
    return frozenset(types)


def _depth(value: Any, where: str, error: type[LwrError]) -> int:
    try:
        depth = int(value)
    except (TypeError, ValueError):
        raise error(f"{where}: 'depth' must be a non-negative integer, not {value!r}") from None
    if depth < 0 or isinstance(value, bool) or (isinstance(value, float) and value != depth):
        raise error(f"{where}: 'depth' must be a non-negative integer, not {value!r}")
    return depth


def _known_actions() -> str:
    return f" (known: {', '.join(ACTION_SPECS)})"
