"""Plans and their limits: pure data and pure checks, no I/O beyond reading the config file.

Two plans ship, ``free`` and ``premium``; the admin may change their limits and add others with
``plans`` (a YAML file in server.ini, or the mapping itself in app.yml)::

    free:    {max_input_size: 150 KB, max_total_input: 1 MB, max_running_jobs: 2,
              retention_minutes: 10}
    premium: {max_input_size: unlimited, max_total_input: unlimited, max_running_jobs: 10,
              retention_minutes: forever}
    lab:     {max_input_size: 5 GB, max_running_jobs: 20, retention_minutes: 1440}

A key left out of ``free`` or ``premium`` keeps its default; left out of another plan it is
unlimited. Sizes take B, KB/MB/GB (powers of 1000) and KiB/MiB/GiB (powers of 1024). The order
of the plans is the order an upgrade is suggested in: the first plan that would accept a refused
upload is named in the refusal.

``max_running_jobs`` does not refuse anything: a user's extra jobs wait queued until one of their
running jobs ends (a shared service should not make every client write retry logic).
``retention_minutes`` is kept here for the retention work to enforce.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from lwr.errors import ConfigurationError, InvalidRequestError, QuotaExceededError


@dataclass(frozen=True)
class Plan:
    """One plan's limits; None means unlimited (or, for retention, forever)."""

    name: str
    #: the largest single file a job may receive, in bytes
    max_input_size: int | None = None
    #: the most bytes all files uploaded into one job may add up to
    max_total_input: int | None = None
    #: jobs of the user a backend holds at once; more wait queued
    max_running_jobs: int | None = None
    #: minutes a finished job's results stay before archiving (None: kept forever)
    retention_minutes: float | None = None

    def allows(self, size: int, total: int) -> bool:
        """Whether a file of ``size`` bytes bringing its job to ``total`` bytes fits."""
        return (self.max_input_size is None or size <= self.max_input_size) and (
            self.max_total_input is None or total <= self.max_total_input
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan("free", 150_000, 1_000_000, 2, 10.0),
    Plan("premium", None, None, 10, None),
)


@dataclass(frozen=True)
class Plans:
    """Every plan of the server, in upgrade order, and the one new users get."""

    plans: tuple[Plan, ...] = DEFAULT_PLANS
    default: str = "free"

    def get(self, name: str) -> Plan:
        for plan in self.plans:
            if plan.name == name:
                return plan
        raise InvalidRequestError(f"unknown plan {name!r} (plans: {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [plan.name for plan in self.plans]

    def allowing(self, size: int, total: int) -> Plan | None:
        """The first plan that would accept the upload (for the refusal to name)."""
        return next((plan for plan in self.plans if plan.allows(size, total)), None)


@dataclass(frozen=True)
class UploadBudget:
    """How many bytes one upload may bring, and which limit says so."""

    plan: str
    limit: str
    limit_bytes: int
    #: bytes the job already holds (without the file being replaced)
    before: int
    #: bytes this upload may have
    allowed: int

    def refuse(self, plans: Plans, size: int) -> QuotaExceededError:
        """The 413 for an upload of (at least) ``size`` bytes."""
        allowing = plans.allowing(size, self.before + size)
        return QuotaExceededError(
            self.limit, self.limit_bytes, size, self.plan, allowing.name if allowing else None
        )


def budget(plan: Plan, before: int) -> UploadBudget | None:
    """The tighter of the plan's two upload limits for a job holding ``before`` bytes."""
    candidates = []
    if plan.max_input_size is not None:
        candidates.append(("max_input_size", plan.max_input_size, plan.max_input_size))
    if plan.max_total_input is not None:
        left = max(plan.max_total_input - before, 0)
        candidates.append(("max_total_input", plan.max_total_input, left))
    if not candidates:
        return None
    limit, limit_bytes, allowed = min(candidates, key=lambda c: c[2])
    return UploadBudget(plan.name, limit, limit_bytes, before, allowed)


def check_size(plans: Plans, plan: Plan, before: int, size: int | None) -> UploadBudget | None:
    """Refuse an upload of known ``size`` over the plan; else its budget for streaming."""
    found = budget(plan, before)
    if found is not None and size is not None and size > found.allowed:
        raise found.refuse(plans, size)
    return found


# -- configuration --------------------------------------------------------------------------

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_UNLIMITED = ("unlimited", "none", "forever", "")


def parse_size(value: Any, key: str) -> int | None:
    """``150 KB`` -> 150000; ``unlimited`` (or null) -> None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _UNLIMITED):
        return None
    found = _SIZE.match(str(value))
    unit = found.group(2).lower() if found else ""
    if found is None or unit not in _UNITS:
        raise ConfigurationError(f"plans: {key} must be a size like '150 KB', not {value!r}")
    return int(float(found.group(1)) * _UNITS[unit])


def _number(value: Any, key: str, kind: type[int] | type[float]) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in _UNLIMITED):
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"plans: {key} must be a number, not {value!r}") from None
    if number <= 0:
        raise ConfigurationError(f"plans: {key} must be positive (or unlimited), not {value!r}")
    return number


_KEYS = {
    "max_input_size": parse_size,
    "max_total_input": parse_size,
    "max_running_jobs": lambda v, k: _number(v, k, int),
    "retention_minutes": lambda v, k: _number(v, k, float),
}


def _plan(name: str, options: Any, base: Plan) -> Plan:
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"plans: plan {name!r} must be a mapping of limit: value")
    unknown = sorted(set(options) - set(_KEYS))
    if unknown:
        raise ConfigurationError(
            f"plans: plan {name!r}: unknown key(s) {', '.join(map(str, unknown))} "
            f"(known: {', '.join(_KEYS)})"
        )
    changes = {key: _KEYS[key](value, f"{name}.{key}") for key, value in options.items()}
    return replace(base, name=name, **changes)


def parse_plans(value: Any, base: Path, default_plan: str = "free") -> Plans:
    """The server's plans from ``plans`` (a mapping, or the path of a YAML file holding one)."""
    if isinstance(value, str) and value.strip():
        from lwr.config import load_yaml_file

        path = (base / value.strip()).resolve()
        value = load_yaml_file(path, "plans file ")
    if value is None or (isinstance(value, str) and not value.strip()):
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigurationError("plans must be a mapping of plan name: limits")
    plans = {plan.name: plan for plan in DEFAULT_PLANS}
    for name, options in value.items():
        name = str(name)
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", name):
            raise ConfigurationError(f"plans: invalid plan name {name!r}")
        plans[name] = _plan(name, options or {}, plans.get(name, Plan(name)))
    if default_plan not in plans:
        known = ", ".join(plans)
        raise ConfigurationError(f"default_plan {default_plan!r} is not a plan ({known})")
    return Plans(tuple(plans.values()), default_plan)
