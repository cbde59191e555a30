"""The PasteDeploy entry point.

Use ``paste.app_factory = lwr.web.wsgi:app_factory`` or ``use = egg:lwr`` in ``[app:main]``.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from lwr import config_yaml, memtrace
from lwr.app import LwrApp
from lwr.web.dispatch import LwrWsgiApp

log = logging.getLogger(__name__)


def app_factory(global_conf: dict[str, Any], **local_conf: Any) -> LwrWsgiApp:
    """Build and start the application from the ``[app:main]`` options.

    ``global_conf`` carries PasteDeploy's ``here`` (the directory of server.ini), against which
    relative paths in the configuration are resolved. A Pulsar-style ``app_config`` (or an app.yml
    beside server.ini) is read too, see :mod:`lwr.config_yaml`.
    """
    memtrace.start_from_environment()
    here = global_conf.get("here")
    options = {
        k: v for k, v in local_conf.items() if global_conf.get(k) != v or k not in global_conf
    }
    config = config_yaml.load(options, here)
    app = LwrApp(config)
    app.start()
    atexit.register(app.stop)
    return LwrWsgiApp(app)
