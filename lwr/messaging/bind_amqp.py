"""AmqpBinding: every manager of the app bound to the broker, started and stopped with the app."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lwr.config import AppConfig
from lwr.errors import ConfigurationError
from lwr.managers.stateful import StatefulManager
from lwr.messaging.consumers import RequestConsumer
from lwr.messaging.exchange import AmqpExchange, key_prefix, redact_url
from lwr.messaging.publisher import StatusPublisher
from lwr.persistence.outbox import EARLY_KILL_MEMORY, Outbox

if TYPE_CHECKING:
    from lwr.pool.group import PoolGroup
    from lwr.pool.worker import PoolConsumer

log = logging.getLogger(__name__)

#: how long the acknowledgement uuids of consumed messages are remembered, in seconds
CONSUMED_MEMORY = 7 * 24 * 3600


@dataclass
class ManagerBinding:
    """The exchange, consumer and publisher of one manager."""

    exchange: AmqpExchange
    consumer: RequestConsumer | PoolConsumer
    publisher: StatusPublisher
    manager: StatefulManager


class AmqpBinding:
    """Owns the outbox and one :class:`ManagerBinding` per manager.

    Built in :class:`~lwr.app.LwrApp`'s constructor so the status listeners are attached before
    the managers recover their jobs: a state change found during recovery is published too.
    """

    def __init__(self, config: AppConfig, managers: Mapping[str, StatefulManager]) -> None:
        assert config.message_queue_url, "build the binding only when message_queue_url is set"
        self.url = config.message_queue_url
        options = config.amqp
        prefixes = {key_prefix(name, options.key_prefix) for name in managers}
        if len(prefixes) < len(managers):
            raise ConfigurationError(
                f"amqp_key_prefix {options.key_prefix!r} would give {len(managers)} managers the "
                "same queues; put {manager} in it"
            )
        self.outbox = Outbox(config.persistence_directory)
        #: the elastic pool's consumers (lwr.pool) when this server is a pool worker
        self.pool: PoolGroup | None = None
        if config.pool.worker:
            from lwr.pool.group import PoolGroup

            self.pool = PoolGroup(config.pool)
        self.bindings: dict[str, ManagerBinding] = {}
        for name, manager in managers.items():
            exchange = AmqpExchange(self.url, name, options)
            publisher = StatusPublisher(
                exchange, self.outbox, options.acknowledge, options.ack_republish_time
            )
            consumer: RequestConsumer | PoolConsumer
            if self.pool is not None:  # statuses go out with the job's lease (lwr.pool.worker)
                consumer = self._pool_consumer(exchange, manager, config)
            else:
                consumer = RequestConsumer(
                    exchange, manager, publisher, self.outbox, consume_acks=options.acknowledge
                )
                manager.listeners.append(publisher.on_change)
            self.bindings[name] = ManagerBinding(exchange, consumer, publisher, manager)

    def _pool_consumer(
        self, exchange: AmqpExchange, manager: StatefulManager, config: AppConfig
    ) -> PoolConsumer:
        from lwr.pool.worker import PoolConsumer

        assert self.pool is not None
        endpoint = None
        if config.metrics.port:
            endpoint = f"http://{config.metrics.host}:{config.metrics.port}/"
        consumer = PoolConsumer(
            exchange, manager, self.outbox, config.pool, self.pool.drain, endpoint
        )
        self.pool.add(consumer)
        return consumer

    def start(self) -> None:
        forgotten = self.outbox.forget_consumed(time.time() - CONSUMED_MEMORY)
        self.outbox.forget_kills(time.time() - EARLY_KILL_MEMORY)
        pending = self.outbox.count()
        log.info(
            "message queue %s: binding managers %s (%d status updates waiting in the outbox, "
            "%d old acknowledgement ids forgotten)",
            redact_url(self.url),
            ", ".join(sorted(self.bindings)),
            pending,
            forgotten,
        )
        for binding in self.bindings.values():
            # after the managers recovered their jobs: what recovery finished is announced already
            if self.pool is None:  # a pool worker publishes on its consumer's channel instead
                binding.publisher.announce_missed(binding.manager)
                binding.publisher.start()
            binding.consumer.start()

    def stop(self) -> None:
        """Stop consuming first (no new work), then publishing.

        The outbox stays open: managers stopped after this may still report a state change, which
        is then kept durably and published by the next start.
        """
        for binding in self.bindings.values():
            binding.consumer.stop()
        for binding in self.bindings.values():
            binding.publisher.stop()

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Whether every consumer is connected and consuming within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for binding in self.bindings.values():
            if not binding.consumer.ready.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True
