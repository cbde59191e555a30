"""lwr.serve: which layout ``lwr serve`` sees, and whether PasteDeploy can load it as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.errors import ConfigurationError
from lwr.serve import Layout, find_layout

LWR_INI = "[server:main]\nuse = egg:lwr#main\n\n[app:main]\nuse = egg:lwr\n"
PULSAR_INI = (
    "[server:main]\nport = 1\nhost = localhost\n\n[app:main]\napp_config = %(here)s/app.yml\n"
)
OLD_PULSAR_INI = (
    "[server:main]\nuse = egg:Paste#http\n\n"
    "[app:main]\npaste.app_factory = pulsar.web.wsgi:app_factory\n"
)


@pytest.mark.parametrize(
    ("text", "loadable"), [(LWR_INI, True), (PULSAR_INI, False), (OLD_PULSAR_INI, False)]
)
def test_only_lwrs_own_ini_goes_straight_to_pastedeploy(
    tmp_path: Path, text: str, loadable: bool
) -> None:
    ini = tmp_path / "server.ini"
    ini.write_text(text)
    assert find_layout(ini).paste_loadable() is loadable


def test_app_yml_alone_when_there_is_no_server_ini(tmp_path: Path) -> None:
    (tmp_path / "app.yml").write_text("---\n")
    layout = find_layout(tmp_path / "server.ini")
    assert layout == Layout(None, (tmp_path / "app.yml").resolve())
    assert layout.here == tmp_path.resolve()
    assert not layout.paste_loadable()
    assert find_layout(tmp_path / "app.yml") == layout


def test_an_explicit_app_yml_beside_an_lwr_ini_is_not_left_to_pastedeploy(tmp_path: Path) -> None:
    ini = tmp_path / "server.ini"
    ini.write_text(LWR_INI)
    (tmp_path / "other.yml").write_text("---\n")
    layout = find_layout(ini, str(tmp_path / "other.yml"))
    assert layout.app_yml == (tmp_path / "other.yml").resolve()
    assert not layout.paste_loadable()


@pytest.mark.parametrize("name", ["server.ini", "site.yml"])
def test_nothing_to_serve_names_the_missing_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name} does not exist"):
        find_layout(tmp_path / name)
    with pytest.raises(ConfigurationError, match=r"nope\.yml does not exist"):
        find_layout(tmp_path / "server.ini", str(tmp_path / "nope.yml"))


def test_an_lwr_ini_with_an_explicit_app_yml_builds_lwrs_app(tmp_path: Path) -> None:
    from lwr.serve import build_app

    ini = tmp_path / "server.ini"
    ini.write_text(LWR_INI + "private_token = from-ini\n")
    (tmp_path / "site.yml").write_text("private_token: from-yml\n")
    app = build_app(find_layout(ini, str(tmp_path / "site.yml")))
    try:
        assert app.app.config.private_token == "from-yml"
        assert app.app.config.here == tmp_path.resolve()
    finally:
        app.app.stop()


def test_an_ini_naming_another_application_is_refused(tmp_path: Path) -> None:
    from lwr.serve import build_app

    ini = tmp_path / "server.ini"
    ini.write_text("[app:main]\nuse = egg:SomethingElse\n")
    with pytest.raises(ConfigurationError, match="names another application"):
        build_app(find_layout(ini))


def test_a_bad_percent_is_named_without_quoting_the_value(tmp_path: Path) -> None:
    """A proxy's percent-encoded credentials written with one '%' (ini files want '%%'): the
    error names the option, not its value (which holds a password)."""
    ini = tmp_path / "server.ini"
    ini.write_text(LWR_INI + "tes_http_proxy = http://u:s3cret%21@proxy:3128\n")
    with pytest.raises(ConfigurationError, match=r"\[app:main\] tes_http_proxy: .*%%") as caught:
        find_layout(ini).paste_loadable()
    assert "s3cret" not in str(caught.value)
