"""The webless runner refuses to start a server nothing could reach."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lwr.errors import ConfigurationError
from lwr.messaging.webless import server_runner


def test_webless_without_a_message_queue_is_a_configuration_error() -> None:
    app = SimpleNamespace(app=SimpleNamespace(messaging=None))
    with pytest.raises(ConfigurationError, match="message_queue_url"):
        server_runner(app, {})


def test_the_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    names = {e.name: e.value for e in entry_points(group="paste.server_runner")}
    assert names.get("webless") == "lwr.messaging.webless:server_runner"
