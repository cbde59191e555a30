"""A RabbitMQ node of one test's own, for tests that stop and start the broker.

``rabbitmqctl stop_app`` on the shared broker (127.0.0.1:5672) would cut off every other test,
service and helper using it. Instead the test starts a second node of the installed RabbitMQ on
free ports, with its own node name, data and log directories and no plugins, and stops that.
Starting one takes about ten seconds. The scripts under ``/usr/lib/rabbitmq/bin`` are run
directly: Debian's ``/usr/sbin`` wrappers switch to the ``rabbitmq`` user, which drops the
environment that names the node and cannot write the test's directories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from tests.integration.server import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def available() -> bool:
    """Whether this machine can start a node (RabbitMQ's own scripts are installed)."""
    return (RABBITMQ_BIN / "rabbitmq-server").exists() or shutil.which(
        "rabbitmq-server"
    ) is not None


class PrivateBroker:
    """One RabbitMQ node in ``directory``: ``start()``, ``ctl("stop_app")``, ``stop()``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.node = f"lwrtest{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.pid_file = directory / "node.pid"

    def _env(self) -> dict[str, str]:
        (self.directory / "mnesia").mkdir(parents=True, exist_ok=True)
        (self.directory / "log").mkdir(exist_ok=True)
        plugins = self.directory / "enabled_plugins"
        plugins.write_text("[].\n")  # the management plugin would want the shared node's port
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "none"),
        }

    def _script(self, name: str) -> str:
        direct = RABBITMQ_BIN / name
        return str(direct) if direct.exists() else name

    def start(self) -> PrivateBroker:
        env = self._env()
        subprocess.run(
            [self._script("rabbitmq-server"), "-detached"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.ctl("wait", "--timeout", "90", str(self.pid_file))
        return self

    def ctl(self, *command: str) -> None:
        """``rabbitmqctl -n NODE COMMAND`` on this node only."""
        subprocess.run(
            [self._script("rabbitmqctl"), "-n", self.node, *command],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def stop(self) -> None:
        """Halt the node (and its Erlang VM); waits until its process is gone."""
        if self.pid_file.exists():
            self.ctl("stop", str(self.pid_file))
