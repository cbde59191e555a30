"""The ``user_auth`` configuration: Pulsar's nested mapping in, frozen typed plugin configs out.

The shape is Pulsar's::

    user_auth:
      authentication:
        - type: oidc
          oidc_jwks_url: https://idp.example.org/jwks
          oidc_provider: keycloak
      authorization:
        - type: userlist
          userlist_allowed_users: [alice, bob]

Any other key at the top of ``user_auth`` is shared: Pulsar merges it into every plugin's options,
and so does LWR (each plugin gets the shared keys it knows; a shared key no configured plugin
knows is an error). :mod:`lwr.config` calls :func:`parse_user_auth` once at start-up; every
plugin type is looked up in :mod:`lwr.registry` there, so an unknown one fails the start with a
"did you mean".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lwr.auth.base import Authentication, Authorization, Plugin
from lwr.errors import ConfigurationError
from lwr.registry import AUTHENTICATION, AUTHORIZATION, lookup

FAMILIES = ("authentication", "authorization")


@dataclass(frozen=True)
class PluginConfig:
    """One configured plugin: its registry alias and its typed options."""

    type: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserAuthConfig:
    """The validated ``user_auth`` option; ``source`` says where it came from, for messages."""

    authentication: tuple[PluginConfig, ...] = ()
    authorization: tuple[PluginConfig, ...] = ()
    source: str = "user_auth"


def parse_user_auth(value: Any, source: str = "user_auth") -> UserAuthConfig | None:
    """Validate Pulsar's ``user_auth`` mapping; None (or an empty mapping) means no user_auth."""
    if value is None or value == {}:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"user_auth (in {source}) must be a mapping, not {value!r}")
    if set(value) == {"user_auth"}:  # a file holding ``user_auth:`` itself, as in app.yml
        return parse_user_auth(value["user_auth"], source)
    prefix = "user_auth" if source == "user_auth" else f"user_auth (in {source})"
    shared = {str(k): v for k, v in value.items() if k not in FAMILIES}
    families: dict[str, tuple[PluginConfig, ...]] = {}
    used: set[str] = set()
    for family in FAMILIES:
        entries = value.get(family) or []
        if not isinstance(entries, list):
            raise ConfigurationError(f"{prefix}: {family} must be a list of plugins")
        families[family] = tuple(
            _plugin(family, entry, shared, f"{prefix} {family}[{index}]", used)
            for index, entry in enumerate(entries)
        )
    unused = sorted(set(shared) - used)
    if unused:
        raise ConfigurationError(
            f"{prefix}: option(s) {', '.join(unused)} known to no configured plugin"
        )
    config = UserAuthConfig(families["authentication"], families["authorization"], source)
    _check_coherent(config, prefix)
    return config


def plugin_class(family: str, alias: str) -> type[Plugin]:
    """The class of ``alias`` in ``family`` (raises ConfigurationError with "did you mean")."""
    table = AUTHENTICATION if family == "authentication" else AUTHORIZATION
    cls: type[Plugin] = lookup(f"user_auth {family} type", table, alias)
    return cls


def _plugin(
    family: str, entry: Any, shared: Mapping[str, Any], where: str, used: set[str]
) -> PluginConfig:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where} must be a mapping with a 'type', not {entry!r}")
    alias = entry.get("type")
    if not isinstance(alias, str) or not alias:
        raise ConfigurationError(f"{where} has no 'type' (one of {_known(family)})")
    try:
        cls = plugin_class(family, alias)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc.message}") from exc
    known_shared = {k: v for k, v in shared.items() if k in cls.OPTIONS}
    used.update(known_shared)
    raw = {**known_shared, **{str(k): v for k, v in entry.items() if k != "type"}}
    return PluginConfig(alias, cls.parse_options(raw, f"{where} ({alias})"))


def _check_coherent(config: UserAuthConfig, prefix: str) -> None:
    """Refuse configurations that look protective but cannot work."""
    if not config.authentication and not config.authorization:
        raise ConfigurationError(
            f"{prefix} names no authentication and no authorization plugin; "
            "remove the option to run without user_auth"
        )
    if not config.authentication:
        for plugin in config.authorization:
            cls = plugin_class("authorization", plugin.type)
            if getattr(cls, "needs_identity", True):
                raise ConfigurationError(
                    f"{prefix}: authorization {plugin.type!r} judges a user, "
                    "but no authentication plugin establishes one"
                )


def _known(family: str) -> str:
    table = AUTHENTICATION if family == "authentication" else AUTHORIZATION
    return ", ".join(sorted(table))


def build_plugins(config: UserAuthConfig) -> tuple[list[Authentication], list[Authorization]]:
    """Instantiate the configured plugins (at start-up, so a broken one fails the start)."""
    authentication = [
        _instance("authentication", plugin, Authentication) for plugin in config.authentication
    ]
    authorization = [
        _instance("authorization", plugin, Authorization) for plugin in config.authorization
    ]
    return authentication, authorization


def _instance(family: str, plugin: PluginConfig, base: type[Any]) -> Any:
    cls = plugin_class(family, plugin.type)
    if not issubclass(cls, base):
        raise ConfigurationError(
            f"user_auth {family} type {plugin.type!r} is not an {family} plugin"
        )
    return cls(plugin.type, plugin.options)
