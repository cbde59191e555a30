"""lwr.scaffold: what `lwr config` writes loads as LWR configuration; Galaxy's side agrees."""

from __future__ import annotations

import argparse
import configparser
import shlex
from pathlib import Path

import pytest
import yaml

from lwr import config_yaml, scaffold
from lwr.config import DEFAULT_MANAGER
from lwr.errors import ConfigurationError


def site(tmp_path: Path, **changes: object) -> scaffold.Site:
    values: dict[str, object] = {
        "directory": tmp_path,
        "host": "127.0.0.1",
        "port": 8913,
        "private_token": "tok-1",
        "mq": False,
        "web": False,
        "amqp_url": scaffold.DEFAULT_AMQP_URL,
        "amqp_key_prefix": None,
        "libdrmaa_path": None,
    }
    values.update(changes)
    return scaffold.Site(**values)  # type: ignore[arg-type]


def written(tmp_path: Path, chosen: scaffold.Site, **flags: bool) -> dict[str, str]:
    files = scaffold.render(chosen, systemd=flags.get("systemd", True), supervisor=True)
    scaffold.write(tmp_path, files)
    return files


def test_the_written_app_yml_loads_through_the_ini_validation(tmp_path: Path) -> None:
    written(tmp_path, site(tmp_path, private_token="-starts-with-a-dash: and colon"))
    config = config_yaml.load({"app_config": "app.yml"}, tmp_path)
    assert config.private_token == "-starts-with-a-dash: and colon"
    assert config.staging_directory == tmp_path.resolve() / "files" / "staging"
    assert [(m.name, m.type) for m in config.managers] == [(DEFAULT_MANAGER, "queued_python")]
    assert config.message_queue_url is None


def test_mq_writes_a_webless_server_and_the_broker(tmp_path: Path) -> None:
    files = written(tmp_path, site(tmp_path, mq=True, amqp_key_prefix="pfx"))
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(files["server.ini"])
    assert ini["server:main"]["use"] == "egg:lwr#webless"
    assert "port" not in ini["server:main"]
    config = config_yaml.load({"app_config": "app.yml"}, tmp_path)
    assert config.message_queue_url == scaffold.DEFAULT_AMQP_URL
    assert config.amqp.key_prefix == "pfx"
    assert config.finished_job_retention == 604800


def test_mq_with_web_serves_http_too(tmp_path: Path) -> None:
    files = written(tmp_path, site(tmp_path, mq=True, web=True, port=9999))
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(files["server.ini"])
    assert ini["server:main"]["use"] == "egg:lwr#main"
    assert ini["server:main"]["port"] == "9999"


def test_job_conf_rest_names_url_and_token(tmp_path: Path) -> None:
    conf = yaml.safe_load(scaffold.job_conf(site(tmp_path, port=8123, private_token="a'b\"c")))
    environment = conf["execution"]["environments"]["lwr"]
    assert environment["url"] == "http://127.0.0.1:8123/"
    assert environment["private_token"] == "a'b\"c"
    assert conf["runners"][environment["runner"]]["load"].endswith(":PulsarRESTJobRunner")


def test_job_conf_for_all_interfaces_names_this_host(tmp_path: Path) -> None:
    import socket

    conf = yaml.safe_load(scaffold.job_conf(site(tmp_path, host="0.0.0.0")))
    url = conf["execution"]["environments"]["lwr"]["url"]
    assert url == f"http://{socket.getfqdn()}:8913/"


def test_job_conf_mq_names_broker_prefix_and_jobs_directory(tmp_path: Path) -> None:
    chosen = site(tmp_path, mq=True, amqp_url="amqp://u:p@broker:5672//", amqp_key_prefix="k")
    conf = yaml.safe_load(scaffold.job_conf(chosen))
    runner = conf["runners"]["pulsar_mq"]
    assert runner["load"].endswith(":PulsarMQJobRunner")
    assert (runner["amqp_url"], runner["amqp_key_prefix"]) == ("amqp://u:p@broker:5672//", "k")
    environment = conf["execution"]["environments"]["lwr"]
    assert environment["jobs_directory"] == str(scaffold.jobs_directory(chosen))
    assert environment["default_file_action"] == "remote_transfer"


def test_libdrmaa_goes_into_local_env_and_the_manager(tmp_path: Path) -> None:
    files = written(tmp_path, site(tmp_path, libdrmaa_path="/opt/sge lib/libdrmaa.so"))
    assert "export DRMAA_LIBRARY_PATH='/opt/sge lib/libdrmaa.so'" in files["local_env.sh"]
    assert "type: queued_drmaa" in files["app.yml"]


def test_unit_and_program_quote_a_directory_with_spaces(tmp_path: Path) -> None:
    directory = tmp_path / "my site"
    files = written(directory, site(directory))
    unit = configparser.ConfigParser(interpolation=None)
    unit.read_string(files["lwr.service"])
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[:2] == ["/bin/sh", "-c"]
    assert shlex.split(argv[2].split("exec ", 1)[1])[1:] == ["serve", str(directory / "server.ini")]


def test_web_without_mq_is_refused(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    scaffold.add_arguments(parser)
    args = parser.parse_args(["--directory", str(tmp_path), "--web"])
    with pytest.raises(ConfigurationError, match="--web only means something with --mq"):
        scaffold.main(args)
    assert not (tmp_path / "app.yml").exists()


def test_generated_tokens_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    scaffold.add_arguments(parser)
    tokens = []
    for name in ("a", "b"):
        scaffold.main(parser.parse_args(["--directory", str(tmp_path / name)]))
        tokens.append(yaml.safe_load((tmp_path / name / "app.yml").read_text())["private_token"])
    assert tokens[0] != tokens[1] and min(map(len, tokens)) >= 43
    assert "lwr serve" in capsys.readouterr().out
