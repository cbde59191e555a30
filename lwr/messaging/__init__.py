"""LWR driven over a message queue (AMQP, through kombu), in the protocol of Galaxy's client.

Importing this package needs nothing beyond the standard library; :func:`build_binding` imports
kombu only when ``message_queue_url`` is set, so a server without it never needs kombu.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from lwr.errors import ConfigurationError

if TYPE_CHECKING:
    from lwr.config import AppConfig
    from lwr.managers.stateful import StatefulManager
    from lwr.messaging.bind_amqp import AmqpBinding


def build_binding(config: AppConfig, managers: Mapping[str, StatefulManager]) -> AmqpBinding:
    """The binding of every manager to the broker of ``config.message_queue_url``."""
    try:
        import kombu  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "message_queue_url is set but kombu is not installed: pip install 'lwr[amqp]'"
        ) from None
    from lwr.messaging.bind_amqp import AmqpBinding

    return AmqpBinding(config, managers)
