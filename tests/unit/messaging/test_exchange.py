"""Queue names and options agree with Galaxy's client, which fixes them."""

from __future__ import annotations

import ssl

import pytest

from lwr.config import AmqpConfig, load_app_config
from lwr.errors import ConfigurationError
from lwr.messaging.exchange import AmqpExchange, key_prefix, redact_url, ssl_arguments

amqp_exchange = pytest.importorskip("pulsar.client.amqp_exchange")


def client_queue_name(manager: str, prefix: str | None, name: str) -> str:
    """The name Galaxy's own PulsarExchange gives queue ``name`` (it does not connect)."""
    exchange = amqp_exchange.PulsarExchange("memory://", manager, amqp_key_prefix=prefix)
    return exchange._PulsarExchange__queue_name(name)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("manager", "prefix"),
    [("_default_", None), ("example", None), ("example", "galaxy_main")],
)
@pytest.mark.parametrize("name", ["setup", "kill", "status", "status_update", "setup_ack"])
def test_routing_keys_match_the_client(manager: str, prefix: str | None, name: str) -> None:
    exchange = AmqpExchange("memory://", manager, AmqpConfig(key_prefix=prefix))
    assert exchange.routing_key(name) == client_queue_name(manager, prefix, name)
    queue = exchange.queue(name)
    assert queue.name == queue.routing_key == exchange.routing_key(name)
    assert queue.durable and exchange.exchange.durable
    assert (exchange.exchange.name, exchange.exchange.type) == ("pulsar", "direct")


def test_manager_placeholder_in_the_prefix() -> None:
    assert key_prefix("big", "site1_{manager}") == "site1_big"
    assert key_prefix("_default_", None) == "pulsar_"


def test_redact_url_hides_the_password() -> None:
    assert redact_url("amqp://guest:s3cret@host:5672//") == "amqp://guest:***@host:5672//"
    assert redact_url("amqp://host//") == "amqp://host//"


def test_ssl_options_become_kombu_arguments(tmp_path) -> None:
    config = load_app_config(
        {"amqp_connect_ssl_ca_certs": "/ca.pem", "amqp_connect_ssl_cert_reqs": "cert_required"},
        here=tmp_path,
    )
    assert ssl_arguments(config.amqp.ssl) == {"ca_certs": "/ca.pem", "cert_reqs": ssl.CERT_REQUIRED}
    assert ssl_arguments(None) is None


def test_amqp_options_are_typed_and_checked(tmp_path) -> None:
    config = load_app_config(
        {
            "amqp_acknowledge": "true",
            "amqp_heartbeat": "0",
            "amqp_publish_retry": "yes",
            "amqp_publish_retry_max_retries": "3",
            "amqp_key_prefix": "x_{manager}",
        },
        here=tmp_path,
    )
    assert config.amqp.acknowledge and config.amqp.publish_retry
    assert config.amqp.heartbeat == 0
    assert config.amqp.publish_retry_policy["max_retries"] == 3
    assert config.amqp.key_prefix == "x_{manager}"
    for key, value in [
        ("amqp_acknowledge", "maybe"),
        ("amqp_heartbeat", "-1"),
        ("amqp_connect_ssl_cert_reqs", "always"),
        ("amqp_publish_retry_interval_max", "soon"),
    ]:
        with pytest.raises(ConfigurationError, match=key):
            load_app_config({key: value}, here=tmp_path)
