"""The notification options: defaults, and each bad value refused with its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.config import APP_DEFAULTS, load_app_config
from lwr.errors import ConfigurationError


def test_defaults_send_no_mail_and_retry_for_hours(tmp_path: Path) -> None:
    notify = load_app_config({}, here=tmp_path).notify
    assert notify.smtp.host is None and notify.smtp.tls == "none" and notify.public_url == ""
    waits = [notify.backoff(n) for n in range(1, notify.max_attempts)]
    assert waits[0] == float(APP_DEFAULTS["notify_retry_delay"]) and waits == sorted(waits)


def test_values_are_typed(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    options = {
        "smtp_host": "mail",
        "smtp_port": "587",
        "smtp_tls": "STARTTLS",
        "smtp_ca_file": "ca.pem",
        "public_url": "https://lwr.example/",
    }
    notify = load_app_config(options, here=tmp_path).notify
    assert (notify.smtp.port, notify.smtp.tls) == (587, "starttls")
    assert notify.smtp.ca_file == tmp_path / "ca.pem"
    assert notify.public_url == "https://lwr.example"


def test_pruning_and_the_egress_policy(tmp_path: Path) -> None:
    default = load_app_config({}, here=tmp_path).notify
    assert default.keep_seconds == 30 * 86400 and default.egress().allowed == ()
    options = {"notify_keep_days": "0.5", "notify_webhook_allowed_networks": "10.9.0.0/16, ::1"}
    notify = load_app_config(options, here=tmp_path).notify
    assert notify.keep_seconds == 43200
    assert [str(net) for net in notify.egress().allowed] == ["10.9.0.0/16", "::1/128"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("smtp_tls", "tls"),
        ("smtp_port", "smtp"),
        ("notify_retry_delay", "-1"),
        ("notify_max_attempts", "0"),
        ("smtp_ca_file", "missing.pem"),
        ("notify_poll_interval", "0"),
        ("notify_keep_days", "-1"),
        ("notify_keep_days", "soon"),
        ("notify_webhook_allowed_networks", "10.0.0.1/8"),
        ("notify_webhook_allowed_networks", "intranet.example"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        load_app_config({key: value}, here=tmp_path)
