"""All the pool consumers of one worker process, drained together.

A worker is a process: a drain command or SIGTERM drains every manager it serves, and the
process may exit once each of them has finished (:attr:`PoolGroup.finished`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lwr.pool.settings import PoolConfig
    from lwr.pool.worker import PoolConsumer

log = logging.getLogger(__name__)


class PoolGroup:
    """The :class:`~lwr.pool.worker.PoolConsumer` of each manager of this worker."""

    def __init__(self, settings: PoolConfig) -> None:
        self.settings = settings
        self.consumers: list[PoolConsumer] = []
        #: set when every consumer has drained: the process may exit
        self.finished = threading.Event()

    def add(self, consumer: PoolConsumer) -> None:
        consumer.on_done = self._check
        self.consumers.append(consumer)

    def drain(self, timeout: float | None = None) -> None:
        """Stop taking jobs and finish (thread-safe; a second call changes nothing)."""
        seconds = self.settings.drain_timeout if timeout is None else timeout
        for consumer in self.consumers:
            consumer.begin_drain(seconds)

    @property
    def draining(self) -> bool:
        return any(consumer.draining for consumer in self.consumers)

    def _check(self) -> None:
        if all(consumer.done.is_set() for consumer in self.consumers):
            log.info("worker %s: every manager drained", self.settings.worker_id)
            self.finished.set()


def pool_of(wsgi_app: Any) -> PoolGroup | None:
    """The pool group of a WSGI app built by LWR's factory, None when not a pool worker."""
    app = getattr(wsgi_app, "app", None)
    messaging = getattr(app, "messaging", None)
    return getattr(messaging, "pool", None)
