"""What every ``user_auth`` plugin shares: the request it judges, the identity, its options.

A plugin declares its options in ``OPTIONS`` (name -> :class:`Option`), so the configuration is
checked completely at start-up — an unknown key, a missing one or a value of the wrong kind is a
:class:`~lwr.errors.ConfigurationError` naming it — and the plugin's constructor receives values
that are already typed. Two families, as in Pulsar: an *authentication* plugin proves who
submitted a job (:class:`Authentication`), an *authorization* plugin decides whether that user may
run jobs here (:class:`Authorization`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from lwr.errors import ConfigurationError


@dataclass(frozen=True)
class AuthRequest:
    """What a job brings to be judged: its id and the ``token_endpoint`` its client sent."""

    manager: str
    job_id: str
    token_endpoint: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who submitted a job, as an authentication plugin established it."""

    username: str
    #: the plugin that established it (``oidc``, ``allow_all``)
    method: str
    claims: Mapping[str, Any] = field(default_factory=dict)


Parser = Callable[[Any, str], Any]


@dataclass(frozen=True)
class Option:
    """One plugin option: how to read its value, and its default when it is optional."""

    parse: Parser
    required: bool = False
    default: Any = None


class Plugin(ABC):  # noqa: B024 - abstract through its two families
    """Base of both families; ``OPTIONS`` lists every key the plugin accepts."""

    OPTIONS: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, type_name: str, options: Mapping[str, Any]) -> None:
        self.type_name = type_name
        self.options = options

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Typed options from ``raw``; unknown or missing keys are errors naming them."""
        unknown = sorted(key for key in raw if key not in cls.OPTIONS)
        if unknown:
            known = ", ".join(sorted(cls.OPTIONS)) or "none"
            raise ConfigurationError(
                f"{where}: unknown option(s) {', '.join(unknown)} (known: {known})"
            )
        missing = sorted(k for k, o in cls.OPTIONS.items() if o.required and raw.get(k) is None)
        if missing:
            raise ConfigurationError(f"{where}: missing required option(s) {', '.join(missing)}")
        typed = {}
        for key, option in cls.OPTIONS.items():
            value = raw.get(key)
            typed[key] = option.default if value is None else option.parse(value, f"{where} {key}")
        return typed


class Authentication(Plugin):
    """Proves who submitted a job."""

    @abstractmethod
    def authenticate(self, request: AuthRequest) -> Identity | None:
        """The submitter's identity; None when this plugin has nothing to say about the job.

        A plugin that tried and failed raises :class:`~lwr.errors.UserAuthError` (a refusal) or
        :class:`~lwr.errors.IdentityServiceError` (a service it needs did not answer).
        """


class Authorization(Plugin):
    """Decides whether an authenticated user may run jobs here."""

    #: whether the plugin judges a user, so it needs an authentication plugin before it
    needs_identity: ClassVar[bool] = True

    @abstractmethod
    def authorize(self, identity: Identity | None) -> bool:
        """Whether ``identity`` (None when no authentication plugin is configured) may run jobs."""


# -- option parsers: (value from YAML, "where key" for messages) -> typed value -----------------


def text(value: Any, where: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool) or str(value) == "":
        raise ConfigurationError(f"{where} must be a non-empty string, not {value!r}")
    return str(value).strip()


def text_list(value: Any, where: str) -> tuple[str, ...]:
    """A YAML list of strings; a single string is taken as a list of one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigurationError(f"{where} must be a list of strings, not {value!r}")
    return tuple(text(item, where) for item in items)


def seconds(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where} must be a number of seconds, not {value!r}") from None
    if number < 0 or number != number or number == float("inf"):
        raise ConfigurationError(f"{where} must be a finite number of seconds >= 0, not {value!r}")
    return number


def positive_seconds(value: Any, where: str) -> float:
    number = seconds(value, where)
    if number == 0:
        raise ConfigurationError(f"{where} must be more than 0 seconds")
    return number


def regex(value: Any, where: str) -> re.Pattern[str]:
    pattern = text(value, where)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(
            f"{where}: {pattern!r} is not a valid regular expression: {exc}"
        ) from None


def http_url(value: Any, where: str) -> str:
    url = text(value, where)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{where} must be an http:// or https:// URL, not {url!r}")
    return url


def public_url(url: str) -> str:
    """``url`` without query, fragment and credentials: safe to log (Galaxy's has a job key)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"
