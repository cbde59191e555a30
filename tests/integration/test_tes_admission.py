"""TES on servers whose admission settings judge it: a tool whitelist, ``user_auth`` plugins.

Split from test_tes_users.py (whose module-wide site serves service users); each test here starts
its own server with ``lwr_server_factory``, since the setting under test is server-wide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import tes

from tests.integration.conftest import ServerFactory
from tests.integration.galaxy_job import write_toolbox
from tests.integration.server import LwrServer
from tests.integration.test_tes_users import ADMIN, PREFIX, task, until

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]


def test_a_tool_whitelist_refuses_tes(lwr_server_factory: ServerFactory, tmp_path: Path) -> None:
    toolbox = write_toolbox(tmp_path / "admin")
    server = lwr_server_factory(
        app_options={"tool_config_files": str(toolbox), "private_token": ADMIN}
    )
    answer = _create(server, task("true"))
    assert answer.status_code == 403, answer.text
    assert answer.json()["setting"] == "tool_config_files" and answer.json()["code"] == 403
    assert "tool whitelist" in answer.json()["message"]
    assert _jobs(server) == []


def test_user_auth_that_needs_no_galaxy_token_admits_tes(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "user_auth.yml"
    path.write_text("authentication:\n  - type: allow_all\nauthorization:\n  - type: allow_all\n")
    server = lwr_server_factory(app_options={"user_auth": str(path), "private_token": ADMIN})
    answer = _create(server, task("echo admitted"))
    assert answer.status_code == 200, answer.text
    client = tes.HTTPClient(server.url.rstrip("/"), token=ADMIN, timeout=30)
    done = until(
        lambda: (t := client.get_task(answer.json()["id"], view="FULL")).state == "COMPLETE" and t,
        "the task admitted by allow_all to complete",
    )
    assert done.logs[0].logs[0].stdout == "admitted\n"


def test_user_auth_that_needs_galaxys_token_refuses_tes(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "user_auth.yml"
    path.write_text(
        "authentication:\n  - type: oidc\n    oidc_jwks_url: http://127.0.0.1:9/jwks\n"
        "    oidc_provider: keycloak\n    oidc_audience: galaxy\n"
        "    oidc_issuer: https://idp.test\n"
    )
    server = lwr_server_factory(app_options={"user_auth": str(path), "private_token": ADMIN})
    answer = _create(server, task("true"))
    assert answer.status_code == 403, answer.text
    assert answer.json()["setting"] == "user_auth"
    assert "token_endpoint" in answer.json()["message"] and "allow_all" in answer.json()["message"]
    assert _jobs(server) == []


def _create(server: LwrServer, body: tes.Task) -> requests.Response:
    return requests.post(
        server.url.rstrip("/") + f"{PREFIX}/tasks",
        data=body.as_json(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        timeout=30,
    )


def _jobs(server: LwrServer) -> list[Any]:
    status, answer = server.request("GET", "jobs", {"private_token": ADMIN})
    assert status == 200, answer
    return list(answer["jobs"])
