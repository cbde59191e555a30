"""Pulsar's app.yml -> the raw options load_app_config validates (lwr.config_yaml)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from lwr import config_yaml
from lwr.config import APP_DEFAULTS, DEFAULT_MANAGER, STRUCTURED_OPTIONS, AppConfig, ManagerConfig
from lwr.errors import ConfigurationError


def translate(
    document: dict[str, Any],
    ini: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> config_yaml.Translated:
    return config_yaml.translate(document, ini or {}, env or {})


def load(tmp_path: Path, text: str, **ini: str) -> AppConfig:
    (tmp_path / "app.yml").write_text(text)
    return config_yaml.load(ini, tmp_path)


# -- values become the strings the ini would hold --------------------------------------------------


def test_scalars_become_ini_strings() -> None:
    raw = translate(
        {
            "private_token": "abc",
            "amqp_acknowledge": True,
            "amqp_publish_retry": False,
            "amqp_heartbeat": 30,
            "amqp_ack_republish_time": 2.5,
            "remote_copy_allowed_paths": ["/data/a", "/data/b"],
            "file_cache_dir": None,
        }
    ).raw
    assert raw == {
        "private_token": "abc",
        "amqp_acknowledge": "true",
        "amqp_publish_retry": "false",
        "amqp_heartbeat": "30",
        "amqp_ack_republish_time": "2.5",
        "remote_copy_allowed_paths": "/data/a,/data/b",
    }


def test_pulsar_assign_ids_galaxy_is_lwr_none() -> None:
    assert translate({"assign_ids": "galaxy"}).raw == {"assign_ids": "none"}
    assert translate({"assign_ids": "uuid"}).raw == {"assign_ids": "uuid"}


def test_a_mapping_is_refused_unless_structured() -> None:
    with pytest.raises(ConfigurationError, match="staging_directory must be a single value"):
        translate({"staging_directory": {"a": 1}})
    with pytest.raises(ConfigurationError, match="private_token must be a value or a list"):
        translate({"private_token": [{"a": 1}]})


def test_structured_options_pass_through_as_mappings() -> None:
    assert "user_auth" in STRUCTURED_OPTIONS
    block = {"authentication": [{"type": "oidc"}], "authorization": [{"type": "allow_all"}]}
    assert config_yaml.to_raw("user_auth", block) is block


def test_yaml_overrides_the_ini_and_the_environment_overrides_both() -> None:
    raw = translate(
        {"private_token": "yaml", "staging_directory": "yaml-stage"},
        ini={"private_token": "ini", "persistence_directory": "ini-state"},
        env={
            "PULSAR_CONFIG_STAGING_DIRECTORY": "env-only-if-unset",
            "PULSAR_CONFIG_FILE_CACHE_DIR": "env-cache",
            "PULSAR_CONFIG_OVERRIDE_PRIVATE_TOKEN": "env-wins",
            "HOME": "/root",
        },
    ).raw
    assert raw == {
        "private_token": "env-wins",
        "staging_directory": "yaml-stage",
        "persistence_directory": "ini-state",
        "file_cache_dir": "env-cache",
    }


# -- unknown and unsupported keys ------------------------------------------------------------------


def test_an_unknown_key_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown option.*staging_direktory"):
        load(tmp_path, "staging_direktory: /tmp/x\n")


@pytest.mark.parametrize("key", ["job_directory_mode", "message_queue_username"])
def test_unsupported_security_keys_stop_start_up_naming_them(key: str) -> None:
    with pytest.raises(ConfigurationError, match=f"LWR does not implement {key} "):
        translate({key: "x"})


def test_every_fatal_key_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        translate({"message_queue_username": "u", "relay_topic_prefix": "p"})
    assert "message_queue_username" in str(caught.value)
    assert "relay_topic_prefix" in str(caught.value)


def test_unsupported_harmless_keys_are_warnings_naming_them() -> None:
    translated = translate(
        {"sentry_dsn": "https://x", "conda_prefix": "/c", "object_store_umask": "0022"}
    )
    assert translated.raw == {}
    text = "\n".join(translated.warnings)
    for key in ("sentry_dsn", "conda_prefix", "object_store_umask"):
        assert f"app.yml: {key} is not implemented by LWR and is ignored" in text


def test_values_that_ask_for_what_lwr_does_anyway_are_silent() -> None:
    """pulsar-config writes conda_auto_init/conda_auto_install: false into every app.yml."""
    translated = translate(
        {"conda_auto_init": False, "conda_auto_install": False, "message_queue_consume": True}
    )
    assert translated.raw == {} and translated.warnings == ()
    with pytest.raises(ConfigurationError, match="message_queue_consume"):
        translate({"message_queue_consume": False})
    assert translate({"conda_auto_init": True}).warnings


def test_persistence_none_is_named_and_the_default_kept() -> None:
    translated = translate({"persistence_directory": "__none__"})
    assert translated.raw == {}
    assert "persistence_directory __none__ is ignored" in translated.warnings[0]


def test_warnings_are_logged_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lwr.config_yaml"):
        load(tmp_path, "sentry_dsn: https://x\n")
    assert "sentry_dsn is not implemented by LWR" in caplog.text


# -- managers --------------------------------------------------------------------------------------


def test_managers_block_becomes_manager_configs(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "managers:\n"
        "  _default_:\n    type: queued_python\n    num_concurrent_jobs: 2\n"
        "  cluster:\n    type: queued_cli\n    job_plugin: slurm\n"
        "  bare: {}\n",
    )
    assert config.managers == (
        ManagerConfig(DEFAULT_MANAGER, "queued_python", {"num_concurrent_jobs": "2"}),
        ManagerConfig("cluster", "queued_cli", {"job_plugin": "slurm"}),
        ManagerConfig("bare", "queued_python", {}),
    )
    assert config.job_managers_config is None


def test_single_manager_is_the_default_or_named(tmp_path: Path) -> None:
    config = load(tmp_path, "manager:\n  type: unqueued\n")
    assert config.managers == (ManagerConfig(DEFAULT_MANAGER, "unqueued", {}),)
    named = translate({"manager": {"name": "only", "num_concurrent_jobs": 3}}).managers
    assert named == (ManagerConfig("only", "queued_python", {"num_concurrent_jobs": "3"}),)


def test_top_level_min_polling_interval_is_every_managers_default() -> None:
    managers = translate(
        {"min_polling_interval": 0.5, "managers": {"a": {}, "b": {"min_polling_interval": 2}}}
    ).managers
    assert managers == (
        ManagerConfig("a", "queued_python", {"min_polling_interval": "0.5"}),
        ManagerConfig("b", "queued_python", {"min_polling_interval": "2"}),
    )
    alone = translate({"min_polling_interval": 3}).managers
    assert alone == (
        ManagerConfig(DEFAULT_MANAGER, "queued_python", {"min_polling_interval": "3"}),
    )


def test_pulsar_manager_options_lwr_lacks_are_named() -> None:
    translated = translate(
        {"managers": {"m": {"preprocess_action_max_retries": 3, "monitor": "background"}}}
    )
    assert translated.managers == (ManagerConfig("m", "queued_python", {}),)
    text = "\n".join(translated.warnings)
    assert "managers.m.preprocess_action_max_retries is not implemented" in text
    assert "managers.m.monitor is not implemented" in text
    with pytest.raises(ConfigurationError, match=r"managers.m.job_directory_mode"):
        translate({"managers": {"m": {"job_directory_mode": "0700"}}})


def test_unknown_manager_options_are_refused_by_the_manager(tmp_path: Path) -> None:
    from lwr.app import LwrApp

    config = load(tmp_path, "managers:\n  m:\n    num_concurent_jobs: 2\n")
    with pytest.raises(ConfigurationError, match=r"manager 'm'.*num_concurent_jobs"):
        LwrApp(config)


def test_managers_and_job_managers_config_are_exclusive(tmp_path: Path) -> None:
    (tmp_path / "jm.ini").write_text("[manager:x]\ntype = queued_python\n")
    with pytest.raises(ConfigurationError, match="not both"):
        load(tmp_path, "job_managers_config: jm.ini\nmanagers:\n  a: {}\n")
    config = load(tmp_path, "job_managers_config: jm.ini\n")
    assert [m.name for m in config.managers] == ["x"]
    with pytest.raises(ConfigurationError, match="set it in that file's sections"):
        load(tmp_path, "job_managers_config: jm.ini\nmin_polling_interval: 2\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("managers: [a, b]\n", "managers must be a mapping"),
        ("managers:\n  a: 3\n", "manager a must be a mapping"),
        ("manager: 3\n", "manager must be a mapping"),
        ("managers: {}\n", "names no manager"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("a: [\n", "cannot read"),
    ],
)
def test_malformed_documents_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load(tmp_path, text)


# -- where app.yml is found ------------------------------------------------------------------------


def test_app_config_is_relative_to_server_ini(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "pulsar.yml").write_text("private_token: t\nstaging_directory: st\n")
    config = config_yaml.load({"app_config": "conf/pulsar.yml"}, tmp_path)
    assert config.private_token == "t"
    # relative paths inside app.yml resolve against server.ini's directory, as the ini's do
    assert config.staging_directory == tmp_path.resolve() / "st"


def test_missing_app_config_falls_back_to_sample_then_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"app_config .*nope.yml.* does not exist"):
        config_yaml.load({"app_config": "nope.yml"}, tmp_path)
    (tmp_path / "nope.yml.sample").write_text("private_token: from-sample\n")
    assert config_yaml.load({"app_config": "nope.yml"}, tmp_path).private_token == "from-sample"


def test_without_app_yml_the_ini_alone_is_read(tmp_path: Path) -> None:
    config = config_yaml.load({"private_token": "ini"}, tmp_path)
    assert config.private_token == "ini"
    assert config_yaml.find_app_yml({}, tmp_path) is None


def test_an_empty_app_yml_is_all_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "---\n")
    assert config.managers == (ManagerConfig(DEFAULT_MANAGER),)


def test_the_docs_name_every_unsupported_key_with_its_severity() -> None:
    """docs/pulsar.md lists each key (prefixes as ``prefix*``) in a row saying error or warning."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "pulsar.md").read_text()
    tables = {
        **{k: v for k, v in config_yaml.PULSAR_UNSUPPORTED.items()},
        **{f"{k}*": v for k, v in config_yaml.PULSAR_UNSUPPORTED_PREFIXES.items()},
    }
    manager_tables = {
        **config_yaml.PULSAR_MANAGER_UNSUPPORTED,
        **{f"{k}*": v for k, v in config_yaml.PULSAR_MANAGER_UNSUPPORTED_PREFIXES.items()},
    }
    top, managers = docs.split("| manager option |", 1)
    for text, table in ((top, tables), (managers, manager_tables)):
        rows = [line for line in text.splitlines() if line.startswith("| `")]
        for key, notice in table.items():
            row = next((r for r in rows if f"`{key}`" in r.split("|")[1]), None)
            assert row is not None, f"docs/pulsar.md does not list {key}"
            assert ("error" if notice.fatal else "warning") in row.split("|")[2], row


def test_a_key_lwr_implements_is_not_listed_as_unsupported() -> None:
    """When another part of LWR implements a Pulsar key (it joins APP_DEFAULTS), this goes red:
    remove the key from PULSAR_UNSUPPORTED and its row from docs/pulsar.md."""
    implemented = sorted(set(config_yaml.PULSAR_UNSUPPORTED) & set(APP_DEFAULTS))
    assert implemented == []


def test_app_config_inside_app_yml_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"app_config belongs in server\.ini"):
        translate({"app_config": "other.yml"})
