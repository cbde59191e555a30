"""user_auth configuration: Pulsar's shape accepted, every mistake named at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lwr.auth.settings import PluginConfig, parse_user_auth
from lwr.config import load_app_config
from lwr.errors import ConfigurationError

OIDC = {"type": "oidc", "oidc_jwks_url": "https://idp.example.org/jwks", "oidc_provider": "kc"}
USERLIST = {"type": "userlist", "userlist_allowed_users": ["alice", "bob"]}


def refused(value: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse_user_auth(value)
    return caught.value.message


def test_pulsar_sample_shape_is_accepted_with_typed_options() -> None:
    config = parse_user_auth(
        {
            "authentication": [
                {
                    **OIDC,
                    "oidc_username_in_token": "preferred_username",
                    "oidc_username_template": "[^@]+",
                    "oidc_audience": "galaxy",
                    "oidc_leeway": "5",
                }
            ],
            "authorization": [USERLIST],
        }
    )
    assert config is not None
    (oidc,) = config.authentication
    assert oidc.type == "oidc"
    assert oidc.options["oidc_audience"] == ("galaxy",)
    assert oidc.options["oidc_leeway"] == 5.0
    assert oidc.options["oidc_algorithms"] == ("RS256",)
    assert isinstance(oidc.options["oidc_username_template"], re.Pattern)
    assert config.authorization == (
        PluginConfig("userlist", {"userlist_allowed_users": ("alice", "bob")}),
    )


@pytest.mark.parametrize("value", [None, {}])
def test_nothing_configured_means_no_user_auth(value: Any) -> None:
    assert parse_user_auth(value) is None


def test_unknown_plugin_type_suggests_the_close_one() -> None:
    message = refused({"authentication": [{**OIDC, "type": "oicd"}]})
    assert "authentication[0]" in message
    assert "did you mean 'oidc'?" in message


def test_unknown_authorization_type_suggests_the_close_one() -> None:
    message = refused({"authentication": [OIDC], "authorization": [{"type": "userlists"}]})
    assert "did you mean 'userlist'?" in message


def test_a_plugin_of_the_other_family_is_not_accepted() -> None:
    message = refused({"authentication": [{"type": "userlist"}]})
    assert "unknown user_auth authentication type 'userlist'" in message


def test_missing_keys_are_named() -> None:
    message = refused({"authentication": [{"type": "oidc"}]})
    assert "missing required option(s) oidc_jwks_url, oidc_provider" in message
    message = refused({"authentication": [OIDC], "authorization": [{"type": "userlist"}]})
    assert "missing required option(s) userlist_allowed_users" in message


def test_unknown_keys_are_named() -> None:
    message = refused({"authentication": [{**OIDC, "oidc_audiance": "x"}]})
    assert "unknown option(s) oidc_audiance" in message
    assert "oidc_audience" in message  # the known ones are listed


def test_a_plugin_without_type() -> None:
    assert "has no 'type'" in refused({"authentication": [{"oidc_provider": "x"}]})


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("oidc_jwks_url", "file:///etc/keys", "http:// or https:// URL"),
        ("oidc_username_template", "*.", "not a valid regular expression"),
        ("oidc_algorithms", ["HS256"], "HS256 not allowed"),
        ("oidc_algorithms", ["none"], "none not allowed"),
        ("oidc_timeout", "0", "more than 0"),
        ("oidc_leeway", "-1", ">= 0"),
        ("oidc_provider", "", "non-empty string"),
    ],
)
def test_bad_values_are_refused(option: str, value: Any, words: str) -> None:
    message = refused({"authentication": [{**OIDC, option: value}]})
    assert option in message
    assert words in message


def test_shared_top_level_keys_reach_the_plugins_that_know_them() -> None:
    """Pulsar merges user_auth's other keys into every plugin; each takes what it knows."""
    config = parse_user_auth(
        {
            "oidc_provider": "shared",
            "oidc_jwks_url": "https://idp/jwks",
            "authentication": [{"type": "oidc"}],
            "authorization": [USERLIST],
        }
    )
    assert config is not None
    assert config.authentication[0].options["oidc_provider"] == "shared"
    assert "oidc_provider" not in config.authorization[0].options


def test_a_shared_key_no_plugin_knows_is_an_error() -> None:
    message = refused({"oidc_jwks_uri": "x", "authentication": [OIDC]})
    assert "oidc_jwks_uri known to no configured plugin" in message


def test_userlist_without_authentication_cannot_work() -> None:
    assert "no authentication plugin" in refused({"authorization": [USERLIST]})


def test_allow_all_alone_is_fine() -> None:
    config = parse_user_auth({"authorization": [{"type": "allow_all"}]})
    assert config is not None and config.authentication == ()


def test_empty_families_are_an_error() -> None:
    assert "no authentication and no authorization" in refused(
        {"authentication": [], "authorization": []}
    )


@pytest.mark.parametrize("value", ["oidc", ["oidc"], {"authentication": "oidc"}])
def test_wrong_shapes(value: Any) -> None:
    refused(value)


# -- through lwr.config: a mapping (app.yml) or a path (server.ini) ---------------------------


def test_app_config_takes_the_mapping(tmp_path: Path) -> None:
    config = load_app_config({"user_auth": {"authentication": [OIDC]}}, here=tmp_path)
    assert config.user_auth is not None
    assert config.user_auth.authentication[0].options["oidc_provider"] == "kc"


def test_app_config_reads_the_yaml_file_relative_to_here(tmp_path: Path) -> None:
    (tmp_path / "user_auth.yml").write_text(
        "authentication:\n"
        "  - type: oidc\n"
        "    oidc_jwks_url: https://idp.example.org/jwks\n"
        "    oidc_provider: kc\n"
        "authorization:\n"
        "  - type: userlist\n"
        "    userlist_allowed_users: [alice]\n"
    )
    config = load_app_config({"user_auth": "user_auth.yml"}, here=tmp_path)
    assert config.user_auth is not None
    assert config.user_auth.source == str(tmp_path.resolve() / "user_auth.yml")
    assert config.user_auth.authorization[0].options["userlist_allowed_users"] == ("alice",)


def test_a_file_may_hold_the_user_auth_key_itself(tmp_path: Path) -> None:
    """So the block can be cut from a Pulsar app.yml as it is."""
    (tmp_path / "ua.yml").write_text("user_auth:\n  authorization:\n    - type: allow_all\n")
    config = load_app_config({"user_auth": str(tmp_path / "ua.yml")}, here=tmp_path)
    assert config.user_auth is not None and config.user_auth.authorization[0].type == "allow_all"


def test_errors_in_the_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ua.yml"
    path.write_text("authentication:\n  - type: odic\n")
    with pytest.raises(ConfigurationError, match=r"in .*ua\.yml.*did you mean 'oidc'"):
        load_app_config({"user_auth": "ua.yml"}, here=tmp_path)


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "cannot read user_auth file"), ("", "is empty"), ("a: [b\n", "cannot read")],
)
def test_unreadable_files(tmp_path: Path, content: str | None, words: str) -> None:
    if content is not None:
        (tmp_path / "ua.yml").write_text(content)
    with pytest.raises(ConfigurationError, match=words):
        load_app_config({"user_auth": "ua.yml"}, here=tmp_path)


def test_empty_string_means_not_configured(tmp_path: Path) -> None:
    assert load_app_config({"user_auth": ""}, here=tmp_path).user_auth is None
    assert load_app_config({}, here=tmp_path).user_auth is None
