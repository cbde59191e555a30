"""Fixtures of the web tests: the in-process application over real local managers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.managers import process, safe_path
from lwr.managers.base import JobState
from lwr.web.dispatch import LwrWsgiApp
from tests.unit.web.dispatch_support import MANAGERS_INI, TOKEN, AppFactory, Client


@pytest.fixture(params=["descriptors", "paths"])
def safe_path_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a file-route test with each backend of :mod:`lwr.managers.safe_path`.

    ``paths`` is the fallback Windows' Python (no ``dir_fd``) uses; it is forced here on Linux.
    """
    monkeypatch.setattr(safe_path, "BACKEND", request.param)
    return str(request.param)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[AppFactory]:
    apps: list[LwrApp] = []

    def factory(**options: str) -> Client:
        here = tmp_path / f"server{len(apps)}"
        here.mkdir()
        (here / "job_managers.ini").write_text(MANAGERS_INI)
        config = load_app_config({"private_token": TOKEN, **options}, here=here)
        app = LwrApp(config)
        app.start()
        apps.append(app)
        return Client(LwrWsgiApp(app))

    yield factory
    for app in apps:
        for manager in app.managers.values():
            for record in app.store.in_states(manager.name, (JobState.QUEUED, JobState.RUNNING)):
                if record.external_id:
                    process.kill_group(record.external_id, grace=0.5)
        app.stop()


@pytest.fixture
def client(make_client: AppFactory) -> Client:
    return make_client(max_upload_size="1000")
