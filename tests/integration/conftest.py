"""Fixtures that start LWR as a real process and run Galaxy's client against it."""

from __future__ import annotations

import optparse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.server import LwrServer, free_port, write_server_ini

ServerFactory = Callable[..., LwrServer]


@pytest.fixture
def lwr_server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Build servers: ``factory(app_options=..., managers_ini=..., server_options=...)``."""
    servers: list[LwrServer] = []

    def factory(
        app_options: dict[str, str] | None = None,
        managers_ini: str | None = None,
        server_options: dict[str, str] | None = None,
        start: bool = True,
        scheme: str = "http",
        env: dict[str, str] | None = None,
    ) -> LwrServer:
        directory = tmp_path / f"server{len(servers)}"
        directory.mkdir()
        port = free_port()
        write_server_ini(directory, port, app_options, server_options)
        if managers_ini is not None:
            (directory / "job_managers.ini").write_text(managers_ini)
        server = LwrServer(directory, port, scheme=scheme, env=env)
        servers.append(server)
        return server.start() if start else server

    yield factory
    for server in servers:
        server.stop()


def local_managers(launcher: str, job_type: str = "queued_python") -> str:
    """job_managers.ini with one ``_default_`` local manager forced onto ``launcher``.

    ``python`` is the launcher a server without bash (Windows) uses; forcing it on Linux is how
    the tests exercise it.
    """
    return f"[manager:_default_]\ntype = {job_type}\nlauncher = {launcher}\n"


@pytest.fixture
def lwr_server(lwr_server_factory: ServerFactory) -> LwrServer:
    return lwr_server_factory()


def run_check(url: str, **overrides: Any) -> None:
    """Run ``pulsar.client.test.check`` (Galaxy's full job scenario) against ``url``.

    Options are those of the check script's command line plus its hidden ones
    (``test_requirement``, ``test_env``, ``explicit_tool_declarations``, ``legacy_galaxy_json``…).
    """
    from pulsar.client.test import check

    options = optparse.Values(
        {
            "url": url,
            "private_token": None,
            "transport": None,
            "cache": False,
            "test_errors": False,
            "suppress_output": False,
            "cleanup": True,
            "job_id": "123456",
            "explicit_tool_declarations": False,
            "legacy_galaxy_json": False,
            "debug": False,
        }
    )
    for key, value in overrides.items():
        setattr(options, key, value)
    check.run(options)
