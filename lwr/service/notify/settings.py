"""The notification options, typed: read once by :func:`lwr.config.load_app_config`.

Kept beside the code that uses them (as :mod:`lwr.pool.settings` does); config.py merges
:data:`NOTIFY_DEFAULTS` into its defaults and calls :func:`parse_notify` with the raw strings.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lwr.egress import EgressPolicy, Network, parse_networks
from lwr.errors import ConfigurationError
from lwr.proxy import Proxy, parse_option

#: the options of this module with their defaults, merged into ``lwr.config.APP_DEFAULTS``
NOTIFY_DEFAULTS: Mapping[str, str] = {
    "smtp_host": "",
    "smtp_port": "25",
    "smtp_tls": "none",
    "smtp_username": "",
    "smtp_password": "",
    "smtp_sender": "lwr@localhost",
    "smtp_ca_file": "",
    "smtp_timeout": "30",
    "public_url": "",
    "notify_max_attempts": "8",
    "notify_retry_delay": "5",
    "notify_retry_max_delay": "900",
    "notify_poll_interval": "2",
    "notify_lease": "120",
    "notify_keep_days": "30",
    "notify_webhook_allowed_networks": "",
    "notify_webhook_ca_file": "",
    "notify_webhook_proxy": "",
}

SMTP_TLS = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class SmtpConfig:
    """Where mail goes; ``host`` None: no email is sent (webhooks still are)."""

    host: str | None = None
    port: int = 25
    tls: str = "none"
    username: str | None = None
    password: str | None = None
    sender: str = "lwr@localhost"
    #: a CA bundle to verify the SMTP server's certificate (a private CA); None: the system's
    ca_file: Path | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class NotifyConfig:
    """Notifications: the SMTP relay, the dashboard's base URL and the retry policy."""

    smtp: SmtpConfig = SmtpConfig()
    #: the server as users reach it (``https://lwr.example.org``): the job link's base
    public_url: str = ""
    max_attempts: int = 8
    retry_delay: float = 5.0
    retry_max_delay: float = 900.0
    poll_interval: float = 2.0
    #: how long a claimed row is left alone before another pass (or process) sends it again
    lease: float = 120.0
    #: days a sent or failed notification is kept before the sender deletes it (0: forever)
    keep_days: float = 30.0
    #: internal networks webhooks may reach all the same (an operator's own receivers)
    webhook_allowed_networks: tuple[Network, ...] = ()
    #: the CA bundle verifying https receivers instead of the system's (a private CA)
    webhook_ca_file: Path | None = None
    #: the forward proxy webhooks go through (None: straight to the judged address)
    webhook_proxy: Proxy | None = None

    @property
    def keep_seconds(self) -> float | None:
        """The retention of finished rows in seconds; None: they are never pruned."""
        return self.keep_days * 86400.0 if self.keep_days > 0 else None

    def egress(self) -> EgressPolicy:
        """Where webhooks may go (lwr.egress)."""
        return EgressPolicy(self.webhook_allowed_networks)

    def webhook_tls(self) -> ssl.SSLContext:
        """What verifies https receivers: ``webhook_ca_file``'s CAs, else the system's."""
        return ssl.create_default_context(
            cafile=None if self.webhook_ca_file is None else str(self.webhook_ca_file)
        )

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed try: doubling, capped."""
        return float(min(self.retry_max_delay, self.retry_delay * 2 ** max(0, attempts - 1)))


def parse_notify(values: Mapping[str, str], base: Path) -> NotifyConfig:
    """The options as typed values; a bad one is a ConfigurationError naming it."""
    tls = values["smtp_tls"].lower()
    if tls not in SMTP_TLS:
        raise ConfigurationError(f"smtp_tls must be one of {SMTP_TLS}, not {tls!r}")
    ca_file = _ca_file(values, "smtp_ca_file", base)
    smtp = SmtpConfig(
        host=values["smtp_host"] or None,
        port=int(_number(values, "smtp_port")),
        tls=tls,
        username=values["smtp_username"] or None,
        password=values["smtp_password"] or None,
        sender=values["smtp_sender"],
        ca_file=ca_file,
        timeout=_number(values, "smtp_timeout"),
    )
    config = NotifyConfig(
        smtp=smtp,
        public_url=values["public_url"].rstrip("/"),
        max_attempts=int(_number(values, "notify_max_attempts")),
        retry_delay=_number(values, "notify_retry_delay"),
        retry_max_delay=_number(values, "notify_retry_max_delay"),
        poll_interval=_number(values, "notify_poll_interval"),
        lease=_number(values, "notify_lease"),
        keep_days=_number(values, "notify_keep_days"),
        webhook_allowed_networks=_networks(values["notify_webhook_allowed_networks"]),
        webhook_ca_file=_ca_file(values, "notify_webhook_ca_file", base),
        webhook_proxy=parse_option("notify_webhook_proxy", values["notify_webhook_proxy"]),
    )
    try:  # a file that is no CA bundle fails the start, not every https webhook
        config.webhook_tls()
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"notify_webhook_ca_file {str(config.webhook_ca_file)!r} has no usable CA "
            f"certificate (PEM expected): {exc}"
        ) from None
    if config.max_attempts < 1 or config.poll_interval <= 0 or config.retry_delay < 0:
        raise ConfigurationError(
            "notify_max_attempts must be >= 1, notify_poll_interval > 0, notify_retry_delay >= 0"
        )
    return config


def _ca_file(values: Mapping[str, str], key: str, base: Path) -> Path | None:
    """A CA bundle option: a file, relative to the configuration's directory; None: unset."""
    if not values[key]:
        return None
    path = (base / values[key]).resolve()
    if not path.is_file():
        raise ConfigurationError(f"{key} {str(path)!r} does not exist")
    return path


def _networks(text: str) -> tuple[Network, ...]:
    try:
        return parse_networks(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"notify_webhook_allowed_networks: {exc} (give networks such as 10.1.0.0/16, fd00::/8)"
        ) from None


def _number(values: Mapping[str, str], key: str) -> float:
    try:
        value = float(values[key])
    except ValueError:
        raise ConfigurationError(f"{key} must be a number, not {values[key]!r}") from None
    if value < 0:
        raise ConfigurationError(f"{key} must not be negative, not {value}")
    return value
