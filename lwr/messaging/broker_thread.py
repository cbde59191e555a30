"""The life cycle shared by the threads that hold a broker connection: start, stop, back off.

The per-manager AMQP consumer (:mod:`lwr.messaging.consumers`) and the elastic pool's worker
(:mod:`lwr.pool.worker`) each run one daemon thread that connects, consumes until the connection
ends, and reconnects after a growing pause. What they do inside a session differs; how the thread
is started and stopped, and how the pause grows, is the same and lives here once, so a fix to one
(say, the join timeout) cannot miss the other.
"""

from __future__ import annotations

import threading

#: the first pause after a lost connection, and the longest (seconds); each failure doubles it
BACKOFF_START, BACKOFF_MAX = 1.0, 15.0


def next_delay(delay: float) -> float:
    """The pause after ``delay`` when reconnecting failed again: doubled, at most BACKOFF_MAX."""
    return min(delay * 2, BACKOFF_MAX)


class BrokerThread:
    """A daemon thread running :meth:`_run` until :meth:`stop`; see the module docstring.

    Subclasses set ``_stopping`` and ``_thread`` in their ``__init__`` and implement
    :meth:`_run`, which must return soon after ``_stopping`` is set.
    """

    _stopping: threading.Event
    _thread: threading.Thread | None

    def _run(self) -> None:
        raise NotImplementedError

    def _start_thread(self, name: str) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
