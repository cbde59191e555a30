"""load_app_config, load_managers_ini and the small option parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.config import (
    APP_DEFAULTS,
    DEFAULT_MANAGER,
    ManagerConfig,
    load_app_config,
    load_managers_ini,
    parse_concurrency,
    parse_seconds,
)
from lwr.errors import ConfigurationError


def test_defaults_resolve_against_here(tmp_path: Path) -> None:
    config = load_app_config({}, here=tmp_path)
    assert config.here == tmp_path.resolve()
    assert config.private_token is None
    assert config.staging_directory == tmp_path.resolve() / "files" / "staging"
    assert config.persistence_directory == tmp_path.resolve() / "files" / "persisted_data"
    assert config.tool_dependency_dir == tmp_path.resolve() / "dependencies"
    assert config.assign_ids == "none"
    assert config.file_cache_dir is None
    assert config.ssl_pem is None
    assert config.max_upload_size is None
    assert config.maximum_stream_size == int(APP_DEFAULTS["maximum_stream_size"])
    assert config.message_queue_url is None
    # no job_managers.ini beside server.ini: one default queued_python manager
    assert config.job_managers_config is None
    assert config.managers == (ManagerConfig(DEFAULT_MANAGER),)
    assert config.managers[0].type == "queued_python"


def test_here_can_come_from_the_raw_options(tmp_path: Path) -> None:
    config = load_app_config({"here": str(tmp_path), "staging_directory": "stage"})
    assert config.staging_directory == tmp_path.resolve() / "stage"


def test_relative_paths_use_here_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    here = tmp_path / "etc"
    config = load_app_config(
        {
            "staging_directory": "../stage",
            "persistence_directory": "state",
            "tool_dependency_dir": "deps",
        },
        here=here,
    )
    assert config.staging_directory == tmp_path.resolve() / "stage"
    assert config.persistence_directory == here.resolve() / "state"
    assert config.tool_dependency_dir == here.resolve() / "deps"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "staging"
    config = load_app_config({"staging_directory": str(target)}, here=tmp_path / "other")
    assert config.staging_directory == target.resolve()


def test_values_are_typed_and_stripped(tmp_path: Path) -> None:
    config = load_app_config(
        {
            "private_token": " s3cret ",
            "max_upload_size": "1024",
            "maximum_stream_size": "77",
            "assign_ids": "UUID",
            "ssl_pem": "*",
            "message_queue_url": "amqp://guest:guest@localhost//",
            "tool_dependency_dir": "",
            "file_cache_dir": "cache",
        },
        here=tmp_path,
    )
    assert config.private_token == "s3cret"
    assert config.max_upload_size == 1024
    assert config.maximum_stream_size == 77
    assert config.assign_ids == "uuid"
    assert config.ssl_pem == "*"
    assert config.message_queue_url == "amqp://guest:guest@localhost//"
    assert config.tool_dependency_dir is None
    assert config.file_cache_dir == tmp_path.resolve() / "cache"


def test_paste_keys_are_tolerated(tmp_path: Path) -> None:
    raw = {
        "use": "egg:lwr",
        "__file__": str(tmp_path / "server.ini"),
        "here": str(tmp_path),
        "debug": "false",
    }
    assert load_app_config(raw).here == tmp_path.resolve()


def test_unknown_key_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_app_config({"staging_directroy": "x", "privat_token": "y"}, here=tmp_path)
    message = caught.value.message
    assert "staging_directroy" in message
    assert "privat_token" in message
    assert "staging_directory" in message  # the known keys are listed to spot the typo


@pytest.mark.parametrize("value", ["random", "", "uuid4", "None "])
def test_assign_ids_must_be_none_or_uuid(tmp_path: Path, value: str) -> None:
    if value.strip().lower() == "none":
        assert load_app_config({"assign_ids": value}, here=tmp_path).assign_ids == "none"
        return
    with pytest.raises(ConfigurationError, match="assign_ids"):
        load_app_config({"assign_ids": value}, here=tmp_path)


@pytest.mark.parametrize("key", ["max_upload_size", "maximum_stream_size"])
def test_integer_options_refuse_junk(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        load_app_config({key: "1MB"}, here=tmp_path)


@pytest.mark.parametrize("key", ["max_upload_size", "maximum_stream_size"])
def test_sizes_must_not_be_negative(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{key} must not be negative"):
        load_app_config({key: "-1"}, here=tmp_path)


def test_max_upload_size_zero_means_no_limit(tmp_path: Path) -> None:
    assert load_app_config({"max_upload_size": "0"}, here=tmp_path).max_upload_size is None


@pytest.mark.parametrize("key", ["staging_directory", "persistence_directory"])
def test_required_paths_must_not_be_empty(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        load_app_config({key: "  "}, here=tmp_path)


def test_job_managers_ini_beside_server_ini_is_found_by_default(tmp_path: Path) -> None:
    (tmp_path / "job_managers.ini").write_text(
        "[manager:_default_]\ntype = queued_python\nmax_concurrent_jobs = 2\n\n"
        "[manager:slurm]\ntype = queued_cli\njob_plugin = slurm\nJob_Partition = debug\n"
    )
    config = load_app_config({}, here=tmp_path)
    assert config.job_managers_config == tmp_path.resolve() / "job_managers.ini"
    assert [m.name for m in config.managers] == ["_default_", "slurm"]
    default, slurm = config.managers
    assert default.type == "queued_python"
    assert dict(default.options) == {"max_concurrent_jobs": "2"}  # 'type' is not an option
    assert slurm.type == "queued_cli"
    assert dict(slurm.options) == {"job_plugin": "slurm", "Job_Partition": "debug"}  # case kept


def test_explicit_missing_job_managers_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"managers\.ini"):
        load_app_config({"job_managers_config": "conf/managers.ini"}, here=tmp_path)


def test_explicit_empty_job_managers_config_means_the_default_manager(tmp_path: Path) -> None:
    (tmp_path / "job_managers.ini").write_text("[manager:other]\n")
    config = load_app_config({"job_managers_config": ""}, here=tmp_path)
    assert config.job_managers_config is None
    assert [m.name for m in config.managers] == [DEFAULT_MANAGER]


def test_section_without_type_is_queued_python(tmp_path: Path) -> None:
    path = tmp_path / "jm.ini"
    path.write_text("[manager: spaced ]\nmax_concurrent_jobs = *\n")
    (manager,) = load_managers_ini(path)
    assert manager == ManagerConfig("spaced", "queued_python", {"max_concurrent_jobs": "*"})


@pytest.mark.parametrize(
    "section", ["[server:main]", "[manager]", "[manager:]", "[managers:x]", "[ manager : ]"]
)
def test_bad_section_names_are_refused_by_name(tmp_path: Path, section: str) -> None:
    path = tmp_path / "jm.ini"
    path.write_text(f"[manager:ok]\n\n{section}\ntype = unqueued\n")
    with pytest.raises(ConfigurationError) as caught:
        load_managers_ini(path)
    assert section.strip("[]") in caught.value.message
    assert "[manager:NAME]" in caught.value.message


def test_file_without_sections_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jm.ini"
    path.write_text("# nothing configured\n")
    with pytest.raises(ConfigurationError, match="no \\[manager:NAME\\] section"):
        load_managers_ini(path)


def test_unparsable_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "jm.ini"
    path.write_text("type = queued_python\n")  # an option before any section
    with pytest.raises(ConfigurationError) as caught:
        load_managers_ini(path)
    assert str(path) in caught.value.message


def test_duplicate_sections_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "jm.ini"
    path.write_text("[manager:a]\n[manager:a]\n")
    with pytest.raises(ConfigurationError, match="manager:a"):
        load_managers_ini(path)


def test_missing_file_read_directly_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_managers_ini(tmp_path / "absent.ini")


def test_percent_signs_are_not_interpolated(tmp_path: Path) -> None:
    path = tmp_path / "jm.ini"
    path.write_text("[manager:cli]\ntype = queued_cli\njob_name = lwr-%(job)s-%j\n")
    (manager,) = load_managers_ini(path)
    assert manager.options["job_name"] == "lwr-%(job)s-%j"


@pytest.mark.parametrize(("value", "expected"), [("1", 1), (" 4 ", 4), ("64", 64)])
def test_parse_concurrency_numbers(value: str, expected: int) -> None:
    assert parse_concurrency(value) == expected


def test_parse_concurrency_star_is_the_core_count() -> None:
    assert parse_concurrency("*", cpu_count=6) == 6
    assert parse_concurrency(" * ", cpu_count=None) >= 1


@pytest.mark.parametrize("value", ["0", "-2"])
def test_parse_concurrency_refuses_less_than_one(value: str) -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        parse_concurrency(value)


@pytest.mark.parametrize("value", ["", "two", "1.5", "**"])
def test_parse_concurrency_refuses_junk(value: str) -> None:
    with pytest.raises(ConfigurationError, match="max_concurrent_jobs"):
        parse_concurrency(value)


def test_parse_seconds() -> None:
    assert parse_seconds("0.25", "min_polling_interval") == 0.25
    assert parse_seconds("0", "x") == 0
    with pytest.raises(ConfigurationError, match="min_polling_interval"):
        parse_seconds("soon", "min_polling_interval")
    with pytest.raises(ConfigurationError, match="negative"):
        parse_seconds("-1", "min_polling_interval")


@pytest.mark.parametrize(
    ("value", "policy"),
    [("", "yes"), ("true", "yes"), ("Yes", "yes"), ("accept-new", "accept-new"), ("off", "no")],
)
def test_staging_ssh_host_key_policy(tmp_path: Path, value: str, policy: str) -> None:
    raw = {"staging_ssh_strict_host_key_checking": value, "staging_ssh_known_hosts": "kh"}
    config = load_app_config(raw, here=tmp_path)
    assert config.staging_ssh_host_key_policy == policy
    assert config.staging_ssh_known_hosts == tmp_path.resolve() / "kh"


def test_staging_ssh_host_key_policy_refuses_junk(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="staging_ssh_strict_host_key_checking"):
        load_app_config({"staging_ssh_strict_host_key_checking": "maybe"}, here=tmp_path)


def test_tool_config_files_comma_separated_or_a_yaml_list(tmp_path: Path) -> None:
    for name in ("a.xml", "b.xml"):
        (tmp_path / name).write_text("<toolbox/>")
    expected = (tmp_path / "a.xml", tmp_path / "b.xml")
    assert (
        load_app_config({"tool_config_files": "a.xml, b.xml"}, here=tmp_path).tool_config_files
        == expected
    )
    assert (
        load_app_config({"tool_config_files": ["a.xml", "b.xml"]}, here=tmp_path).tool_config_files
        == expected
    )
    assert load_app_config({}, here=tmp_path).tool_config_files == ()


@pytest.mark.parametrize("key", ["tool_config_files", "job_metrics_config_file"])
def test_whitelist_and_metrics_files_must_exist(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{key}: .*missing.xml.* is not a file"):
        load_app_config({key: "missing.xml"}, here=tmp_path)


def test_job_metrics_config_file_resolves_against_here(tmp_path: Path) -> None:
    (tmp_path / "job_metrics_conf.xml").write_text("<job_metrics><core/></job_metrics>")
    config = load_app_config({"job_metrics_config_file": "job_metrics_conf.xml"}, here=tmp_path)
    assert config.job_metrics_config_file == tmp_path / "job_metrics_conf.xml"
    assert load_app_config({}, here=tmp_path).job_metrics_config_file is None


# -- pulsar_protocol_version (lwr.pulsar_version) ------------------------------------------------


@pytest.mark.parametrize("value", ["0.6.0", "0.14.0", "0.15.12", "0.15.13.dev0", "0.16", "0.16.0"])
def test_an_older_or_equal_pulsar_protocol_version_may_be_reported(
    tmp_path: Path, value: str
) -> None:
    config = load_app_config({"pulsar_protocol_version": value}, here=tmp_path)
    assert config.pulsar_protocol_version == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.16.1", "newer than the Pulsar protocol LWR implements"),
        ("1.0", "newer than"),
        ("0.17.0.dev0", "newer than"),
        ("latest", "not a release number"),
        ("0.15.x", "not a release number"),
    ],
)
def test_a_newer_or_malformed_pulsar_protocol_version_is_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_app_config({"pulsar_protocol_version": value}, here=tmp_path)


def test_release_numbers_order_as_galaxy_orders_them() -> None:
    from lwr.pulsar_version import version_key

    ordered = ["0.6.0", "0.7.0.dev3", "0.7.0", "0.14.0", "0.14.999", "0.15.13.dev0", "0.15.13"]
    assert sorted(ordered, key=version_key) == ordered
    assert version_key("0.16") == version_key("0.16.0")
    assert version_key("0.15.13rc1") < version_key("0.15.13")
