"""The pool_* and metrics_* options: defaults, the worker id's sources, refusals."""

from __future__ import annotations

import pytest

from lwr.config import APP_DEFAULTS, load_app_config
from lwr.errors import ConfigurationError
from lwr.pool.settings import POOL_DEFAULTS, WORKER_ID_ENV, parse_metrics, parse_pool


def _values(**changes: str) -> dict[str, str]:
    return {**POOL_DEFAULTS, **changes}


def test_defaults_are_not_a_worker() -> None:
    pool = parse_pool(_values(), environ={})
    assert not pool.worker and pool.slots == 0 and pool.heartbeat_seconds == 5.0
    assert pool.drain_timeout == 600.0 and pool.worker_id  # host-pid
    assert pool.consumer_timeout == 604800.0 and pool.hub_timeout == 30.0
    metrics = parse_metrics(_values())
    assert metrics.port == 0 and metrics.host == "127.0.0.1" and not metrics.require_token


def test_the_worker_id_comes_from_the_option_then_the_environment() -> None:
    assert parse_pool(_values(pool_worker_id="w-1"), environ={WORKER_ID_ENV: "env"}).worker_id == (
        "w-1"
    )
    assert parse_pool(_values(), environ={WORKER_ID_ENV: "from-env"}).worker_id == "from-env"


@pytest.mark.parametrize(
    "changes",
    [
        {"pool_worker": "maybe"},
        {"pool_worker_id": "has.dot"},
        {"pool_worker_id": "x" * 65},
        {"pool_slots": "-1"},
        {"pool_slots": "two"},
        {"pool_heartbeat_seconds": "0"},
        {"pool_drain_timeout": "-5"},
        {"pool_drain_timeout": "nan"},
        {"pool_consumer_timeout": "forever"},
        {"pool_hub_timeout": "0"},
        {"pool_hub_timeout": "inf"},
        {"pool_hub_timeout": "nan"},
    ],
)
def test_bad_pool_options_are_refused_by_name(changes: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_pool(_values(**changes), environ={})
    assert next(iter(changes)) in str(raised.value)


def test_a_bad_worker_id_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=WORKER_ID_ENV):
        parse_pool(_values(), environ={WORKER_ID_ENV: "a b"})


@pytest.mark.parametrize("changes", [{"metrics_port": "70000"}, {"metrics_require_token": "x"}])
def test_bad_metrics_options_are_refused(changes: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        parse_metrics(_values(**changes))


def test_the_options_reach_the_app_config(tmp_path: object) -> None:
    assert set(POOL_DEFAULTS) <= set(APP_DEFAULTS)
    config = load_app_config(
        {
            "pool_worker": "true",
            "pool_worker_id": "w7",
            "pool_slots": "3",
            "metrics_port": "9100",
            "message_queue_url": "amqp://localhost//",
        },
        here=str(tmp_path),
    )
    assert config.pool.worker and config.pool.worker_id == "w7" and config.pool.slots == 3
    assert config.metrics.port == 9100


def test_a_worker_needs_a_broker() -> None:
    with pytest.raises(ConfigurationError, match="message_queue_url"):
        parse_pool(_values(pool_worker="true"), environ={})
