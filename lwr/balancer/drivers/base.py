"""What every balancer driver offers the daemon, and what it is given."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from lwr.balancer.config import check_driver_options

if TYPE_CHECKING:
    from lwr.balancer.config import BalancerConfig

#: environment variables a worker must never inherit from the balancer (cloud credentials)
SECRET_ENVIRONMENT = (
    "EC2_ACCESS_KEY",
    "EC2_SECRET_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


@dataclass(frozen=True)
class Credentials:
    """Cloud credentials; ``repr`` never shows them, so a stray log line cannot either."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass
class Worker:
    """One worker the driver started (or adopted after a restart)."""

    worker_id: str
    #: wall-clock seconds when it was launched
    launched_at: float
    #: where to find it: ``pid 1234`` or ``i-0abc…``
    where: str
    adopted: bool = False


class Driver(ABC):
    """Starts and stops workers; knows which of them exist, across balancer restarts.

    ``start`` adopts the workers a previous balancer (maybe killed with -9) left running, so no
    duplicate is started and none is orphaned. ``launch`` may start fewer workers than asked
    (the EC2 driver waits while the spot price is above the bid). ``terminate`` is the hard stop
    after a drain timed out; draining itself goes over the broker, not through the driver.
    """

    #: the ``[driver:NAME]`` options and their defaults (documented in balancer.ini.sample)
    DEFAULTS: ClassVar[Mapping[str, str]] = {}
    #: the registry alias, for messages
    alias: ClassVar[str] = ""

    def __init__(
        self,
        config: BalancerConfig,
        credentials: Credentials | None = None,
        ssh_key: str | None = None,
    ) -> None:
        self.config = config
        self.ssh_key = ssh_key
        self.options = check_driver_options(
            f"driver:{self.alias}", config.driver_options, self.DEFAULTS
        )
        self.credentials = credentials

    @abstractmethod
    def start(self) -> list[Worker]:
        """Prepare (e.g. a security group) and adopt the workers that already exist."""

    @abstractmethod
    def launch(self, count: int) -> list[Worker]:
        """Start up to ``count`` workers; the ones actually started."""

    @abstractmethod
    def alive(self) -> dict[str, Worker]:
        """The workers that still exist (dead ones are forgotten here)."""

    @abstractmethod
    def terminate(self, worker_id: str) -> None:
        """Stop one worker now (its drain timed out, or the balancer exits)."""

    def close(self, workers_left: bool = False) -> None:  # noqa: B027 - optional hook
        """Release what ``start`` created, on a clean exit; ``workers_left`` says workers stay
        up (``terminate_on_exit = false``) and still need it (e.g. their security group)."""

    @classmethod
    def needs_credentials(cls) -> bool:
        """Whether the driver talks to a cloud (and so wants keys, prompted for if missing)."""
        return False


def worker_environment() -> dict[str, str]:
    """The balancer's environment minus cloud credentials, for worker processes."""
    return {k: v for k, v in os.environ.items() if k not in SECRET_ENVIRONMENT}
