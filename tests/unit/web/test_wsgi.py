"""The PasteDeploy entry point: server.ini's [app:main] becomes a started application."""

from __future__ import annotations

from pathlib import Path

import pytest
from paste.deploy import loadapp
from webob import Request

from lwr.errors import ConfigurationError
from lwr.web.dispatch import LwrWsgiApp
from lwr.web.wsgi import app_factory


def test_app_factory_resolves_paths_against_here(tmp_path: Path) -> None:
    global_conf = {"here": str(tmp_path), "__file__": str(tmp_path / "server.ini")}
    app = app_factory(global_conf, private_token="tok", staging_directory="stage", **global_conf)
    try:
        assert isinstance(app, LwrWsgiApp)
        assert app.app.config.staging_directory == tmp_path.resolve() / "stage"
        assert app.lwr_config.private_token == "tok"
        response = Request.blank("/healthz").get_response(app)
        assert response.json["status"] == "ok"
    finally:
        app.app.stop()


def test_app_factory_refuses_unknown_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="stagin_directory"):
        app_factory({"here": str(tmp_path)}, stagin_directory="x")


def test_loadapp_from_a_server_ini(tmp_path: Path) -> None:
    (tmp_path / "server.ini").write_text(
        "[DEFAULT]\nshared = 1\n\n"
        "[app:main]\npaste.app_factory = lwr.web.wsgi:app_factory\n"
        "private_token = abc\nmaximum_stream_size = 99\n"
    )
    app = loadapp(f"config:{tmp_path / 'server.ini'}")
    try:
        config = app.app.config
        assert config.here == tmp_path.resolve()
        assert (config.private_token, config.maximum_stream_size) == ("abc", 99)
        assert config.persistence_directory == tmp_path.resolve() / "files" / "persisted_data"
    finally:
        app.app.stop()
