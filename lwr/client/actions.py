"""The client's view of file actions: the rule set, plus ``symlink``, plus the wire form.

Rules are read and matched by :mod:`lwr.staging.rules`, the very code the server uses, so both
sides agree on who moves each file. The client adds one action of its own, ``symlink``: like
``copy`` (a disk both machines see) but the server's input path becomes a symbolic link to the
client's file, which costs nothing for a large dataset. Only the client acts on it, so servers
are told ``copy`` (for them both mean "the client handles this file"), and a Pulsar server, which
would refuse an action it does not know, never sees the name.

Symlinks are made only for files the job reads and never changes (inputs, tool files, index
files); files of the working, metadata and job directories are copied, since a job writing
through a link would change the client's own file, and outputs are always copied back because
the server's copy disappears when the job is cleaned.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lwr.errors import ConfigurationError
from lwr.staging.actions import Action
from lwr.staging.rules import DEFAULT_PATH_TYPES, Rule, RuleSet, load_rules, load_rules_file

#: the actions a client may be configured with (besides the ones the server performs)
CLIENT_ACTIONS = ("transfer", "copy", "symlink", "none", "rewrite")
#: types whose files may be symlinked (read-only for the job)
SYMLINKABLE_TYPES = frozenset({"input", "tool", "unstructured"})
_SYMLINK_MARK = "__lwr_symlink__"


@dataclass(frozen=True)
class Decision:
    """What happens to one path: the action's name and, for ``rewrite``, the rule's action."""

    action_type: str
    action: Action
    depth: int = 0

    @property
    def is_remote(self) -> bool:
        return self.action.is_remote

    @property
    def moves(self) -> bool:
        """Whether the file travels at all (``none`` and ``rewrite`` leave it where it is)."""
        return self.action_type not in ("none", "rewrite")


class ClientActions:
    """Decides the action of every path the client stages, as Galaxy's client would."""

    def __init__(self, rules: RuleSet, symlink_default: bool = False) -> None:
        self.rules = rules
        self.symlink_default = symlink_default

    @classmethod
    def load(
        cls,
        default_action: str = "transfer",
        config: str | os.PathLike[str] | Mapping[str, Any] | Sequence[Any] | None = None,
        files_endpoint: str | None = None,
    ) -> ClientActions:
        """From a default action and an optional rule file (path) or already parsed rules."""
        if isinstance(config, (str, os.PathLike)) and Path(config).exists():
            parsed: Any = _read_rules(Path(config))
        else:
            parsed = copy.deepcopy(config) if config is not None else {}
        if isinstance(parsed, list):
            parsed = {"paths": parsed}
        if not isinstance(parsed, dict):
            raise ConfigurationError(f"file actions {config!r}: expected a mapping or a list")
        symlink_rules = set()
        for index, entry in enumerate(parsed.get("paths") or []):
            if isinstance(entry, dict) and entry.get("action") == "symlink":
                entry["action"] = "copy"
                symlink_rules.add(index)
        symlink_default = default_action == "symlink"
        parsed["default_action"] = "copy" if symlink_default else default_action
        if files_endpoint:
            parsed["files_endpoint"] = files_endpoint
        rules = load_rules(parsed, origin=str(config) if config else "file actions")
        marked = tuple(
            replace(rule, action=Action("copy", {_SYMLINK_MARK: "1"}))
            if index in symlink_rules
            else rule
            for index, rule in enumerate(rules.rules)
        )
        return cls(replace(rules, rules=marked), symlink_default)

    def decide(self, path: str | None, path_type: str) -> Decision:
        """The action for ``path`` of ``path_type``; ``symlink`` only where it is safe."""
        action = self.rules.action_for(path, path_type)
        rule = self.rule_for(path, path_type)
        symlink = (rule is not None and _SYMLINK_MARK in rule.action.params) or (
            rule is None and self.symlink_default and path_type in DEFAULT_PATH_TYPES
        )
        name = action.action_type
        if symlink and name == "copy" and path_type in SYMLINKABLE_TYPES:
            name = "symlink"
        return Decision(name, action, rule.depth if rule is not None else 0)

    def rule_for(self, path: str | None, path_type: str) -> Rule | None:
        """The first rule covering ``path`` of ``path_type`` (None: the default applies)."""
        normalized = os.path.abspath(path) if path is not None else None
        return next((r for r in self.rules.rules if r.matches(normalized, path_type)), None)

    def unstructured_rules(self) -> list[Rule]:
        """The rules that find files on the command line (their kinds include unstructured)."""
        return [r for r in self.rules.rules if "unstructured" in r.path_types and r.path]

    def to_wire(self) -> dict[str, Any]:
        """``remote_staging.action_mapper``: the rules as Galaxy's client serializes them."""
        paths = []
        for rule in self.rules.rules:
            entry: dict[str, Any] = {
                "action": rule.action.action_type,
                "path_types": ",".join(sorted(rule.path_types)),
                "match_type": rule.match_type,
                "depth": rule.depth,
            }
            if rule.path is not None:
                entry["path"] = rule.path
            entry.update({k: v for k, v in rule.action.params.items() if k != _SYMLINK_MARK})
            paths.append(entry)
        wire: dict[str, Any] = {
            "default_action": self.rules.default_action,
            "files_endpoint": self.rules.files_endpoint,
            "paths": paths,
        }
        wire.update(self.rules.ssh)
        return wire


def _read_rules(path: Path) -> Any:
    """Parse a rule file without validating it yet (``symlink`` must be swapped out first)."""
    text = path.read_text(encoding="utf-8")
    import yaml

    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML or JSON: {exc}") from None


__all__ = ["CLIENT_ACTIONS", "ClientActions", "Decision", "load_rules_file"]
