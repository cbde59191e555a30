"""``lwr serve``: start the server from LWR's server.ini, or from a Pulsar site's files unchanged.

Three layouts are served:

* LWR's own ``server.ini`` (``use = egg:lwr`` in ``[app:main]``): PasteDeploy loads it, exactly as
  ``paster serve`` would; an ``app_config`` option or an app.yml beside it is read too.
* Pulsar's ``server.ini`` + ``app.yml`` as ``pulsar-config`` writes them: ``[app:main]`` holds
  only ``app_config`` (or names Pulsar's own factory, ``pulsar.web.wsgi:app_factory``) and
  ``[server:main]`` may have no ``use``. PasteDeploy cannot load that, so LWR builds its app and
  server from the same sections itself.
* ``app.yml`` alone (``pulsar-config --mq`` writes no server.ini): a server with
  ``message_queue_url`` serves the queue only; otherwise HTTP on 127.0.0.1:8913.
"""

from __future__ import annotations

import configparser
import logging
import logging.config
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwr.errors import ConfigurationError

log = logging.getLogger(__name__)

#: ``[app:main]`` / ``[server:main]`` entry points of Pulsar itself, which LWR stands in for
_PULSAR_FACTORIES = ("pulsar.web.wsgi:app_factory", "egg:pulsar", "egg:pulsar-app")
_LWR_FACTORIES = ("egg:lwr", "lwr.web.wsgi:app_factory")


@dataclass(frozen=True)
class Layout:
    """What ``lwr serve`` was pointed at: a server.ini, an app.yml, or both."""

    ini: Path | None
    app_yml: Path | None = None

    @property
    def here(self) -> Path:
        """The directory relative paths are resolved against."""
        return (self.ini or self.app_yml or Path("server.ini")).resolve().parent

    def paste_loadable(self) -> bool:
        """True when PasteDeploy can load the ini as it is (LWR's own layout)."""
        if self.ini is None or self.app_yml is not None:
            return False
        app = _section(self.ini, "app:main")
        factory = app.get("use") or app.get("paste.app_factory") or ""
        server_use = _section(self.ini, "server:main").get("use")
        return bool(factory) and not _is_pulsar(factory) and bool(server_use)


def find_layout(config: Path, app_conf_path: str | None = None) -> Layout:
    """The layout ``lwr serve CONFIG [--app-conf-path P]`` means; ConfigurationError if none."""
    app_yml = Path(app_conf_path).resolve() if app_conf_path else None
    if app_yml is not None and not app_yml.exists():
        raise ConfigurationError(f"{app_yml} does not exist")
    if config.suffix in (".yml", ".yaml"):
        if not config.exists():
            raise ConfigurationError(f"{config} does not exist")
        return Layout(None, config.resolve())
    if config.exists():
        return Layout(config.resolve(), app_yml)
    beside = config.parent / "app.yml"
    if app_yml is None and beside.exists():
        return Layout(None, beside.resolve())
    if app_yml is not None:
        return Layout(None, app_yml)
    raise ConfigurationError(f"{config} does not exist")


def configure_logging(layout: Layout) -> None:
    """The ini's ``[loggers]`` sections if it has them, else ``LWR_LOG_LEVEL`` (INFO) to stderr."""
    if layout.ini is not None and "[loggers]" in layout.ini.read_text(encoding="utf-8"):
        logging.config.fileConfig(
            layout.ini,
            defaults={"here": str(layout.ini.parent), "__file__": str(layout.ini)},
            disable_existing_loggers=False,
        )
    else:
        logging.basicConfig(level=os.environ.get("LWR_LOG_LEVEL", "INFO"))


def serve(layout: Layout) -> None:
    """Build the app and run its server until a signal stops it."""
    if layout.paste_loadable():
        from paste.deploy import loadapp, loadserver

        uri = f"config:{layout.ini}"
        loadserver(uri)(loadapp(uri))
        return
    app = build_app(layout)
    server_options = _section(layout.ini, "server:main") if layout.ini else {}
    use = server_options.pop("use", "")
    global_conf = {"here": str(layout.here), "__file__": str(layout.ini or layout.app_yml)}
    if use and not _is_pulsar(use):
        from paste.deploy import loadserver

        loadserver(f"config:{layout.ini}")(app)
    elif layout.ini is None and app.app.messaging is not None:
        from lwr.messaging import webless

        webless.server_runner(app, global_conf)
    else:
        from lwr.web import server

        server.server_runner(app, global_conf, **server_options)


def build_app(layout: Layout) -> Any:
    """LWR's WSGI app from the ini's ``[app:main]`` (Pulsar's factory left out) and app.yml."""
    from lwr.web.wsgi import app_factory

    options = app_options(layout)
    global_conf = {"here": str(layout.here), "__file__": str(layout.ini or layout.app_yml)}
    return app_factory(global_conf, **options)


def app_config(layout: Layout) -> Any:
    """The validated :class:`~lwr.config.AppConfig` the server of ``layout`` runs with.

    For commands that work on a server's state without serving (``lwr users``).
    """
    from lwr import config_yaml

    return config_yaml.load(app_options(layout), layout.here)


def app_options(layout: Layout) -> dict[str, str]:
    """The ``[app:main]`` options of ``layout`` as the app factory takes them."""
    options = _section(layout.ini, "app:main") if layout.ini else {}
    factory = options.get("paste.app_factory") or options.get("use")
    if factory and not (_is_pulsar(factory) or factory.strip().startswith(_LWR_FACTORIES)):
        raise ConfigurationError(f"{layout.ini}: [app:main] names another application ({factory})")
    options.pop("paste.app_factory", None)
    options.pop("use", None)
    if layout.app_yml is not None:
        options["app_config"] = str(layout.app_yml)
    return options


def _section(ini: Path, name: str) -> dict[str, str]:
    """One section's own options, ``%(here)s`` and ``%(__file__)s`` interpolated as Paste does."""
    defaults = {"here": str(ini.parent), "__file__": str(ini)}
    parser = configparser.ConfigParser(defaults=defaults)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep option case
    try:
        parser.read(ini, encoding="utf-8")
        if not parser.has_section(name):
            return {}
        return {k: v for k, v in parser.items(name) if k not in defaults}
    except configparser.InterpolationError as exc:  # its text quotes the value: a password?
        raise ConfigurationError(
            f"cannot read {ini}: [{exc.section}] {exc.option}: a '%' there starts an "
            "interpolation (write %% for a literal %, as in a proxy's percent-encoded credentials)"
        ) from None
    except configparser.Error as exc:
        raise ConfigurationError(f"cannot read {ini}: {exc}") from exc


def _is_pulsar(entry: str) -> bool:
    return entry.strip().startswith(_PULSAR_FACTORIES)
