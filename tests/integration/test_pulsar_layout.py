"""A Pulsar site's directory (server.ini + app.yml as ``pulsar-config`` writes them) served by LWR.

The directory is written by the real ``pulsar-config``, a ``managers:`` block is added as a site
would, and LWR is started in it with ``lwr serve`` and nothing else; Galaxy's client check then
runs against the default and the named manager.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import run_check
from tests.integration.pulsar_site import CommandServer, pulsar_config
from tests.integration.server import BIN, free_port

pytestmark = pytest.mark.integration

TOKEN = "pulsar-site-token"
MANAGERS = """
managers:
  _default_:
    type: queued_python
    num_concurrent_jobs: 2
  other:
    type: queued_python
    num_concurrent_jobs: 1
    min_polling_interval: 0.2
"""


@pytest.fixture
def servers() -> Iterator[list[CommandServer]]:
    started: list[CommandServer] = []
    yield started
    for server in started:
        server.stop()


def pulsar_site(tmp_path: Path, extra_yaml: str) -> tuple[Path, int]:
    site, port = tmp_path / "pulsar", free_port()
    pulsar_config(site, "--host", "127.0.0.1", "--port", str(port), "--private_token", TOKEN)
    with open(site / "app.yml", "a", encoding="utf-8") as handle:
        handle.write(extra_yaml)
    return site, port


def test_a_pulsar_config_directory_serves_unchanged(
    tmp_path: Path, servers: list[CommandServer]
) -> None:
    site, port = pulsar_site(tmp_path, MANAGERS + "sentry_dsn: https://key@sentry.example.org/1\n")
    server = CommandServer(site, [str(BIN / "lwr"), "serve"], port)
    servers.append(server.start())
    assert server.get("healthz")[1]["managers"] == ["_default_", "other"]
    run_check(server.url, private_token=TOKEN)
    run_check(server.url + "managers/other/", private_token=TOKEN)
    log = server.log()
    for manager in ("_default_", "other"):
        assert f"job {manager}/123456: finished complete (return code 4)" in log
    # the start-up log names the Pulsar key LWR does not implement
    assert "app.yml: sentry_dsn is not implemented by LWR and is ignored" in log
    # the token of app.yml is in force
    status, body = server.request("POST", "jobs", {"job_id": "x", "private_token": "wrong"})
    assert status == 403, body
    assert "Traceback" not in log


def test_the_older_pulsar_ini_naming_pulsars_own_factory_serves_lwr(
    tmp_path: Path, servers: list[CommandServer]
) -> None:
    """Pulsar before 0.15.12 wrote ``paste.app_factory = pulsar.web.wsgi:app_factory`` and
    ``use = egg:Paste#http``; ``lwr serve`` stands in for Pulsar's factory, keeps Paste's server."""
    site, port = pulsar_site(tmp_path, "")
    ini = site / "server.ini"
    text = ini.read_text()
    text = text.replace("[server:main]\n", "[server:main]\nuse = egg:Paste#http\n", 1)
    text = text.replace(
        "[app:main]\n", "[app:main]\npaste.app_factory = pulsar.web.wsgi:app_factory\n", 1
    )
    ini.write_text(text)
    server = CommandServer(site, [str(BIN / "lwr"), "serve", "server.ini"], port)
    servers.append(server.start())
    status, body = server.get("healthz")
    assert status == 200 and body["managers"] == ["_default_"]  # LWR's answer, not Pulsar's
    run_check(server.url, private_token=TOKEN)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("staging_direktory: /tmp/typo\n", "unknown option(s) in the app configuration: "
         "staging_direktory"),
        ("job_directory_mode: 0700\n", "LWR does not implement job_directory_mode"),
        ("managers:\n  m:\n    num_concurent_jobs: 2\n", "unknown option(s) num_concurent_jobs"),
    ],
)  # fmt: skip
def test_an_unknown_or_unsupported_key_stops_start_up_naming_it(
    tmp_path: Path, extra: str, named: str
) -> None:
    site, port = pulsar_site(tmp_path, extra)
    server = CommandServer(site, [str(BIN / "lwr"), "serve"], port)
    code, output = server.exit_output()
    assert code == 1, output
    assert named in output, output
    assert "Traceback" not in output
