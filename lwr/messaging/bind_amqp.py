"""AmqpBinding: every manager of the app bound to the broker, started and stopped with the app."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from lwr.config import AppConfig
from lwr.errors import ConfigurationError
from lwr.managers.stateful import StatefulManager
from lwr.messaging.consumers import RequestConsumer
from lwr.messaging.exchange import AmqpExchange, key_prefix, redact_url
from lwr.messaging.publisher import StatusPublisher
from lwr.persistence.outbox import Outbox

log = logging.getLogger(__name__)

#: how long the acknowledgement uuids of consumed messages are remembered, in seconds
CONSUMED_MEMORY = 7 * 24 * 3600


@dataclass
class ManagerBinding:
    """The exchange, consumer and publisher of one manager."""

    exchange: AmqpExchange
    consumer: RequestConsumer
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
        self.bindings: dict[str, ManagerBinding] = {}
        for name, manager in managers.items():
            exchange = AmqpExchange(self.url, name, options)
            publisher = StatusPublisher(
                exchange, self.outbox, options.acknowledge, options.ack_republish_time
            )
            consumer = RequestConsumer(
                exchange, manager, publisher, self.outbox, consume_acks=options.acknowledge
            )
            manager.listeners.append(publisher.on_change)
            self.bindings[name] = ManagerBinding(exchange, consumer, publisher, manager)

    def start(self) -> None:
        forgotten = self.outbox.forget_consumed(time.time() - CONSUMED_MEMORY)
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
