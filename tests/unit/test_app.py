"""LwrApp: building managers from the configuration and choosing one per request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.errors import ConfigurationError, InvalidRequestError, NotFoundError
from lwr.managers.local import QueuedPythonManager, UnqueuedManager


@pytest.fixture
def built(tmp_path: Path) -> Iterator[list[LwrApp]]:
    apps: list[LwrApp] = []
    yield apps
    for app in apps:
        app.stop()


def make(tmp_path: Path, built: list[LwrApp], managers_ini: str | None, **options: str) -> LwrApp:
    if managers_ini is not None:
        (tmp_path / "job_managers.ini").write_text(managers_ini)
    app = LwrApp(load_app_config(options, here=tmp_path))
    built.append(app)
    return app


def test_default_manager_without_a_managers_file(tmp_path: Path, built: list[LwrApp]) -> None:
    app = make(tmp_path, built, None)
    manager = app.manager(None)
    assert manager.name == "_default_"
    assert isinstance(manager.backend, QueuedPythonManager)
    assert manager.backend.max_concurrent_jobs == 1
    assert manager.staging_directory == tmp_path.resolve() / "files" / "staging"
    assert app.store.path.parent == tmp_path.resolve() / "files" / "persisted_data"


def test_named_managers_and_their_staging_directories(tmp_path: Path, built: list[LwrApp]) -> None:
    app = make(
        tmp_path,
        built,
        "[manager:fast]\ntype = unqueued\nstaging_directory = elsewhere/fast\n\n"
        "[manager:slow]\nmax_concurrent_jobs = 2\n",
    )
    assert sorted(app.managers) == ["fast", "slow"]
    assert isinstance(app.manager("fast").backend, UnqueuedManager)
    assert app.manager("fast").staging_directory == tmp_path.resolve() / "elsewhere" / "fast"
    assert app.manager("slow").backend.max_concurrent_jobs == 2
    with pytest.raises(NotFoundError, match="no default manager"):
        app.manager(None)  # two managers and none named _default_
    with pytest.raises(NotFoundError, match="unknown manager 'nope'"):
        app.manager("nope")


def test_the_only_manager_serves_the_root(tmp_path: Path, built: list[LwrApp]) -> None:
    app = make(tmp_path, built, "[manager:only]\ntype = unqueued\n")
    assert app.manager(None).name == "only"


def test_unknown_manager_type_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "job_managers.ini").write_text("[manager:x]\ntype = queued_pyton\n")
    with pytest.raises(ConfigurationError, match="did you mean 'queued_python'"):
        LwrApp(load_app_config({}, here=tmp_path))


def test_unknown_manager_option_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "job_managers.ini").write_text("[manager:x]\nmax_concurent_jobs = 2\n")
    with pytest.raises(ConfigurationError, match="max_concurent_jobs"):
        LwrApp(load_app_config({}, here=tmp_path))


def test_assigned_job_ids(tmp_path: Path, built: list[LwrApp]) -> None:
    assert make(tmp_path / "a", built, None).assign_job_id("42") == "42"
    uuid_app = make(tmp_path / "b", built, None, assign_ids="uuid")
    first, second = uuid_app.assign_job_id("42"), uuid_app.assign_job_id("42")
    assert first != second and len(first) == 32 and int(first, 16) >= 0


def test_start_is_idempotent_and_stop_stops(tmp_path: Path, built: list[LwrApp]) -> None:
    app = make(tmp_path, built, None)
    app.start()
    app.start()
    monitors = [m._thread for m in app.managers.values()]
    assert all(t is not None and t.is_alive() for t in monitors)
    built.remove(app)
    app.stop()
    assert all(t is not None and not t.is_alive() for t in monitors)


def test_named_manager_directories_cannot_be_default_job_ids(
    tmp_path: Path, built: list[LwrApp]
) -> None:
    """A named manager's directory sits among the default manager's jobs: its name is refused
    as a default-manager job id, so the two can never share a directory."""
    app = make(tmp_path, built, "[manager:_default_]\n\n[manager:slurm]\n")
    staging = tmp_path.resolve() / "files" / "staging"
    assert app.manager(None).staging_directory == staging
    assert app.manager("slurm").staging_directory == staging / "slurm"
    with pytest.raises(InvalidRequestError, match="'slurm' is refused"):
        app.manager(None).setup("slurm")
    app.manager("slurm").setup("slurm")  # the named manager's own job of that id is fine
    assert (staging / "slurm" / "slurm" / "working").is_dir()


def test_a_manager_named_like_an_existing_default_job_is_refused_at_start(
    tmp_path: Path, built: list[LwrApp]
) -> None:
    first = make(tmp_path, built, "[manager:_default_]\n")
    first.start()
    first.manager(None).setup("gpu")
    built.remove(first)
    first.stop()
    second = make(tmp_path, built, "[manager:_default_]\n\n[manager:gpu]\n")
    with pytest.raises(ConfigurationError, match="'gpu' would hold the default manager's job"):
        second.start()
