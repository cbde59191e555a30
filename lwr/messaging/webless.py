"""A server runner without HTTP: ``use = egg:lwr#webless`` in ``[server:main]``.

A server driven only over the message queue opens no port at all (the point of deploying behind a
firewall), yet starts exactly like any other LWR: ``paster serve server.ini``, ``lwr serve``,
``./run.sh`` and their ``--daemon`` forms all work unchanged, because PasteDeploy still builds the
app (which starts the managers and the message-queue binding) and hands it to this runner, which
serves nothing and waits for SIGTERM or SIGINT. A pool worker (``pool_worker = true``) drains on
SIGTERM and exits once drained (or when a drain command made it drain). ``metrics_port`` serves
``/metrics`` on a port of its own, the one HTTP face such a server has.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from lwr.errors import ConfigurationError
from lwr.metrics import start_metrics_server
from lwr.pool.group import pool_of

log = logging.getLogger(__name__)


def server_runner(wsgi_app: Any, global_conf: dict[str, Any], **options: Any) -> None:
    """PasteDeploy ``paste.server_runner``: run until a signal, without listening on any port."""
    if options:
        log.warning("the webless runner ignores [server:main] option(s) %s", ", ".join(options))
    app = getattr(wsgi_app, "app", None)
    if app is None or getattr(app, "messaging", None) is None:
        raise ConfigurationError(
            "use = egg:lwr#webless needs message_queue_url in [app:main]: without a broker "
            "nothing could reach this server"
        )
    stop = threading.Event()
    pool = pool_of(wsgi_app)
    if threading.current_thread() is threading.main_thread():

        def _stop(signum: int, _frame: Any) -> None:
            if pool is not None and signum == signal.SIGTERM:
                log.info("SIGTERM received: draining this pool worker before exiting")
                pool.drain()
                return
            log.info("signal %d received, stopping", signum)
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    log.info("serving the message queue only (no HTTP listener)")
    print("serving the message queue only (no HTTP listener)", flush=True)
    metrics = start_metrics_server(app)
    while not stop.wait(0.5 if pool is not None else 3600):
        if pool is not None and pool.finished.is_set():
            log.info("pool worker drained; exiting")
            break
    if metrics is not None:
        metrics.shutdown()
