"""Tool dependency resolution in Galaxy's package convention.

A requirement ``{"name": "samtools", "version": "1.9", "type": "package"}`` resolves to
``tool_dependency_dir/samtools/1.9/env.sh`` (``default`` when no version is given), which the job
script sources. Unresolved requirements are logged and left out: Galaxy's own resolvers behave the
same, and the tool then fails visibly if it really needed the package.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lwr.errors import InvalidRequestError

log = logging.getLogger(__name__)

_SAFE = re.compile(r"^[A-Za-z0-9_.+\-]+\Z")


def packages(description: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The ``(name, version)`` of each package requirement, checked; 400 for a malformed one.

    Pure (no file system), so a submit can be checked before anything else looks at its job.
    """
    if not description:
        return []
    if not isinstance(description, Mapping):
        raise InvalidRequestError("dependencies_description must be a JSON object")
    requirements = description.get("requirements")
    if requirements is None:
        return []
    if not isinstance(requirements, list):
        raise InvalidRequestError("dependencies_description.requirements must be a list")
    found = []
    for requirement in requirements:
        _check_requirement(requirement)
        if requirement.get("type", "package") != "package":
            continue
        name = str(requirement["name"])
        version = str(requirement.get("version") or "default")
        if not (_SAFE.match(name) and _SAFE.match(version)) or ".." in (name, version):
            raise InvalidRequestError(f"invalid requirement name or version: {name!r} {version!r}")
        found.append((name, version))
    return found


def resolve(tool_dependency_dir: Path | None, description: Mapping[str, Any] | None) -> list[Path]:
    """The ``env.sh`` files to source for a dependencies description (may be empty)."""
    files = []
    for name, version in packages(description):
        if tool_dependency_dir is None:
            log.warning("requirement %s/%s ignored: no tool_dependency_dir", name, version)
            continue
        env_file = tool_dependency_dir / name / version / "env.sh"
        if env_file.is_file():
            files.append(env_file)
        else:
            log.warning("requirement %s/%s not found at %s", name, version, env_file)
    return files


def _check_requirement(requirement: Any) -> None:
    """Refuse a requirement whose fields are not the JSON types Galaxy sends.

    Galaxy's requirements carry a string ``name``, a string ``type`` and a string or null
    ``version``; anything else (a number, a list, ``false`` for a list) is a malformed request,
    refused rather than coerced with ``str()`` or read as "no requirements".
    """
    if not isinstance(requirement, Mapping):
        raise InvalidRequestError(f"invalid requirement {requirement!r}")
    name, kind, version = (requirement.get(key) for key in ("name", "type", "version"))
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f"requirement 'name' must be a non-empty string: {requirement!r}")
    if "type" in requirement and not isinstance(kind, str):
        raise InvalidRequestError(f"requirement 'type' must be a string: {requirement!r}")
    if version is not None and not isinstance(version, str):
        raise InvalidRequestError(
            f"requirement 'version' must be a string or null: {requirement!r}"
        )
