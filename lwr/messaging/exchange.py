"""One manager's view of the broker: the names, kombu entities and connections of the protocol.

Galaxy's client (``pulsar.client``) fixes every name here, so a Galaxy destination written for
Pulsar reaches LWR unchanged: a durable direct exchange ``pulsar``; queues and routing keys both
``<prefix>_<name>``, where the prefix is the configured ``amqp_key_prefix`` or else
``pulsar_<manager>_`` (``pulsar_`` for ``_default_``); JSON bodies; persistent messages when the
exchange is durable.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import kombu

from lwr.config import DEFAULT_MANAGER, AmqpConfig

log = logging.getLogger(__name__)

EXCHANGE_NAME = "pulsar"
EXCHANGE_TYPE = "direct"

#: the keys of the client's optional application-level acknowledgement
ACK_SUFFIX = "_ack"
ACK_UUID = "acknowledge_uuid"
ACK_QUEUE = "acknowledge_queue"
ACK_SUBMIT_QUEUE = "acknowledge_submit_queue"
ACK_UUID_RESPONSE = "acknowledge_uuid_response"
FORCE_NOACK = "force_noack"

#: seconds to wait for the broker to accept a TCP/TLS connection
CONNECT_TIMEOUT = 10


def key_prefix(manager: str, configured: str | None) -> str:
    """The part before ``_<name>`` in every queue name of ``manager``.

    A configured prefix replaces the manager part exactly as the client's ``amqp_key_prefix``
    does; ``{manager}`` in it is replaced by the manager's name, so one setting serves servers
    with several managers without their queues colliding.
    """
    if configured is not None:
        return configured.replace("{manager}", manager)
    return "pulsar_" if manager == DEFAULT_MANAGER else f"pulsar_{manager}_"


def redact_url(url: str) -> str:
    """``url`` with its password replaced, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class AmqpExchange:
    """Builds the kombu exchange, queues and connections of one manager."""

    def __init__(self, url: str, manager: str, options: AmqpConfig, durable: bool = True) -> None:
        self.url = url
        self.manager = manager
        self.options = options
        self.durable = durable
        self.prefix = key_prefix(manager, options.key_prefix)
        self.exchange = kombu.Exchange(EXCHANGE_NAME, EXCHANGE_TYPE, durable=durable)

    def routing_key(self, name: str) -> str:
        """``setup`` → ``pulsar_<manager>_setup``: queue name and routing key alike."""
        return f"{self.prefix}_{name}"

    def queue(self, name: str, consumer_arguments: Mapping[str, Any] | None = None) -> kombu.Queue:
        """The queue ``name``, declared exactly as the client does (else the broker refuses).

        ``consumer_arguments`` go with the consume only (a pool worker's ack timeout), never
        with the declaration.
        """
        key = self.routing_key(name)
        return kombu.Queue(
            key,
            self.exchange,
            routing_key=key,
            durable=self.durable,
            consumer_arguments=dict(consumer_arguments) if consumer_arguments else None,
        )

    def connection(self, confirm_publish: bool = False) -> kombu.Connection:
        """A new (lazy) connection; ``confirm_publish`` makes every publish wait for the broker.

        Publisher confirms are what make a publish mean "the broker has it": without them a
        message written to a socket the broker has just closed is silently lost.
        """
        kwargs: dict[str, Any] = {
            "heartbeat": self.options.heartbeat,
            "connect_timeout": CONNECT_TIMEOUT,
            "transport_options": {"confirm_publish": confirm_publish},
        }
        ssl_options = ssl_arguments(self.options.ssl)
        if ssl_options is not None:
            kwargs["ssl"] = ssl_options
        return kombu.Connection(self.url, **kwargs)

    def publish(self, connection: kombu.Connection, name: str, body: Mapping[str, Any]) -> None:
        """Publish ``body`` as JSON to queue ``name``, declaring the exchange and the queue.

        Declaring the queue (the client declares the same one) means a message published before
        Galaxy first consumed is kept by the broker instead of being dropped as unroutable.
        """
        self.publish_on(connection.default_channel, name, body, retry=self.options.publish_retry)

    def publish_on(
        self, channel: Any, name: str, body: Mapping[str, Any], retry: bool = False
    ) -> None:
        """Publish on a given ``channel`` (a pool worker's transactional one, see lwr.pool)."""
        kwargs: dict[str, Any] = {}
        if retry:
            kwargs["retry"] = True
            kwargs["retry_policy"] = {
                **self.options.publish_retry_policy,
                "errback": _log_retry,
            }
        if self.durable:
            kwargs["delivery_mode"] = 2
        queue = self.queue(name)
        producer = kombu.Producer(channel)
        producer.publish(
            dict(body),
            serializer="json",
            exchange=self.exchange,
            routing_key=queue.routing_key,
            declare=[self.exchange, queue],
            **kwargs,
        )


def ssl_arguments(options: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The ``amqp_connect_ssl_*`` options as the ``ssl`` argument of a kombu connection."""
    if not options:
        return None
    arguments: dict[str, Any] = dict(options)
    if "cert_reqs" in arguments:
        arguments["cert_reqs"] = getattr(ssl, str(arguments["cert_reqs"]).upper())
    return arguments


def _log_retry(exc: BaseException, interval: float) -> None:
    log.warning("publishing failed (%s); retrying in %.1fs", exc, interval)
