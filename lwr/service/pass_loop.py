"""The thread shared by the service's background workers: run passes until idle, then wait.

The notification sender (:mod:`lwr.service.notify.sender`) and the retention worker
(:mod:`lwr.service.retention.worker`) both work through a durable table in *passes*: a pass
returns how much it did, passes repeat while they find work, then the thread sleeps until its
interval passes or someone sets the wake-up event. A failing pass is logged and tried again at
the next wake-up, never the end of the thread: the table still holds the work. That loop and its
start/stop live here once, so both workers stop, wake and survive errors alike.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class PassLoop:
    """A daemon thread calling ``run_once`` until it returns 0, then waiting on ``wakeup``.

    ``after_passes`` (optional) runs once the passes found nothing more, inside the same error
    guard; a failure is logged as ``failed`` on the worker's own ``log``. ``stopping`` is set by
    :meth:`stop` and is what a long pass checks to return early.
    """

    def __init__(
        self,
        name: str,
        run_once: Callable[[], int],
        interval: Callable[[], float],
        wakeup: threading.Event,
        log: logging.Logger,
        failed: str,
        after_passes: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.run_once = run_once
        self.interval = interval
        self.wakeup = wakeup
        self.log = log
        self.failed = failed
        self.after_passes = after_passes
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self.stopping.set()
        self.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                while self.run_once() and not self.stopping.is_set():
                    pass
                if self.after_passes is not None:
                    self.after_passes()
            except Exception:
                self.log.exception(self.failed)
            self.wakeup.wait(self.interval())
            self.wakeup.clear()
