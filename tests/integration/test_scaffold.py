"""``lwr config``: scaffold a server directory, start it as the printed instructions say, and run
Galaxy's client against it with the generated token; the systemd unit's ExecStart starts it too."""

from __future__ import annotations

import configparser
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import run_check
from tests.integration.pulsar_site import CommandServer, job_conf_snippet, lwr_config
from tests.integration.server import BIN, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def servers() -> Iterator[list[CommandServer]]:
    started: list[CommandServer] = []
    yield started
    for server in started:
        server.stop()


def test_scaffolded_directory_serves_galaxy_with_its_token(
    tmp_path: Path, servers: list[CommandServer]
) -> None:
    site, port = tmp_path / "lwr-site", free_port()
    result = lwr_config(site, "--port", str(port), "--systemd", "--supervisor", "--install")
    assert result.returncode == 0, result.stderr
    token = yaml.safe_load((site / "app.yml").read_text())["private_token"]
    assert len(token) >= 32
    assert stat.S_IMODE((site / "app.yml").stat().st_mode) == 0o600
    assert "nothing to install" in result.stdout

    # the printed job_conf.yml is YAML naming this server and its token
    job_conf = yaml.safe_load(job_conf_snippet(result.stdout))
    runner = job_conf["runners"]["pulsar_rest"]["load"]
    assert runner == "galaxy.jobs.runners.pulsar:PulsarRESTJobRunner"
    environment = job_conf["execution"]["environments"][job_conf["execution"]["default"]]
    assert environment["runner"] == "pulsar_rest"
    assert environment["url"] == f"http://127.0.0.1:{port}/"
    assert environment["private_token"] == token

    # "Start LWR by running, from directory <site>: lwr serve"
    assert f"from directory {site}:\n    lwr serve\n" in result.stdout
    server = CommandServer(site, [str(BIN / "lwr"), "serve"], port)
    servers.append(server.start())
    run_check(environment["url"], private_token=environment["private_token"])
    assert server.request("POST", "jobs", {"job_id": "x", "private_token": "nope"})[0] == 403
    server.stop()

    # the systemd unit's ExecStart, run from its WorkingDirectory, serves the same directory
    unit = configparser.ConfigParser(interpolation=None)
    unit.read_string((site / "lwr.service").read_text())
    service = unit["Service"]
    assert Path(service["WorkingDirectory"]) == site
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[:2] == ["/bin/sh", "-c"]
    assert f"{BIN / 'lwr'} serve {site / 'server.ini'}" in exec_start[2]
    by_unit = CommandServer(Path(service["WorkingDirectory"]), exec_start, port)
    servers.append(by_unit.start())
    run_check(environment["url"], private_token=token, job_id="by-unit")

    supervisor = configparser.ConfigParser(interpolation=None)
    supervisor.read_string((site / "supervisor.conf").read_text())
    assert supervisor["program:lwr"]["command"] == service["ExecStart"]
    assert supervisor["program:lwr"]["directory"] == str(site)


def test_an_existing_configuration_is_kept_unless_forced(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert lwr_config(site).returncode == 0
    before = (site / "app.yml").read_text()
    again = lwr_config(site, "--private-token", "other")
    assert again.returncode == 1
    assert "already has app.yml, local_env.sh, server.ini; use --force" in again.stderr
    assert (site / "app.yml").read_text() == before
    forced = lwr_config(site, "--private-token", "other", "--force")
    assert forced.returncode == 0, forced.stderr
    assert yaml.safe_load((site / "app.yml").read_text())["private_token"] == "other"
    assert stat.S_IMODE((site / "app.yml").stat().st_mode) == 0o600


def test_paster_serves_the_scaffolded_directory_too(
    tmp_path: Path, servers: list[CommandServer]
) -> None:
    site, port = tmp_path / "site", free_port()
    assert lwr_config(site, "--port", str(port), "--private-token", "tok").returncode == 0
    server = CommandServer(site, [str(BIN / "paster"), "serve", "server.ini"], port)
    servers.append(server.start())
    run_check(server.url, private_token="tok")
