"""The cloud worker's user data: the template written, pointed at the broker, started as a user."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.balancer.drivers.userdata import DELIMITER, point_at_broker, render_user_data
from lwr.errors import ConfigurationError


def template(tmp_path: Path, server_ini: str) -> Path:
    (tmp_path / "server.ini").write_text(server_ini)
    (tmp_path / "job_managers.ini").write_text("[manager:gpu]\ntype = queued_python\n")
    (tmp_path / "old.log").write_text("not shipped")
    return tmp_path


def test_the_script_writes_the_template_and_starts_the_worker(tmp_path: Path) -> None:
    path = template(tmp_path, "[app:main]\nuse = egg:lwr\nmessage_queue_url = amqp://localhost//\n")
    script = render_user_data(path, "lwr-1", "amqp://u:p@broker//", "/opt/w", "lwr serve x", "lwr")
    assert script.startswith("#!/bin/sh\n") and "mkdir -p /opt/w" in script
    assert "message_queue_url = amqp://u:p@broker//" in script and "localhost" not in script
    assert "[manager:gpu]" in script and "not shipped" not in script
    start = "su -s /bin/sh lwr -c 'LWR_POOL_WORKER_ID=lwr-1 lwr serve x >> worker.log 2>&1 &'"
    assert start in script


def test_a_template_without_the_url_gets_it_in_app_main() -> None:
    assert point_at_broker("[app:main]\nuse = egg:lwr\n", "amqp://b//") == (
        "[app:main]\nmessage_queue_url = amqp://b//\nuse = egg:lwr\n"
    )


def test_oversized_or_unquotable_templates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="16384 at most"):
        render_user_data(template(tmp_path, "#" * 20000), "w", "amqp://b//", "/w", "lwr", "")
    with pytest.raises(ConfigurationError, match=DELIMITER):
        render_user_data(template(tmp_path, DELIMITER), "w", "amqp://b//", "/w", "lwr", "")
