"""The container runtime of each manager (``container_runtime`` in its job_managers.ini section).

``none`` (the default) runs a task's commands on the host and records in the task's
``system_logs`` that its images were not used; service-info says so too. ``docker``, ``podman``
and ``apptainer`` run each executor in its image (:func:`lwr.tes.command.container_argv`): such a
site requires images, so a task is refused with 400 when the runtime's program is not installed on
the server, rather than failing later on the compute host.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from lwr.errors import ConfigurationError, InvalidRequestError
from lwr.managers.stateful import StatefulManager
from lwr.tes.command import RUNTIMES

OPTION = "container_runtime"


def runtime_of(manager: StatefulManager) -> str:
    """The manager's container runtime (validated at start-up by :func:`check_managers`)."""
    return manager.backend.options.get(OPTION, "none").strip() or "none"


def check_managers(managers: Mapping[str, StatefulManager]) -> None:
    """Refuse at start-up a ``container_runtime`` this server does not know."""
    for name, manager in managers.items():
        runtime = runtime_of(manager)
        if runtime not in RUNTIMES:
            raise ConfigurationError(
                f"manager {name!r}: container_runtime must be one of {', '.join(RUNTIMES)}, "
                f"not {runtime!r}"
            )


def require_runnable(runtime: str) -> None:
    """A 400 when the site requires images (a runtime is set) and that runtime is missing."""
    if runtime != "none" and shutil.which(runtime) is None:
        raise InvalidRequestError(
            f"this manager runs executors only in {runtime} containers, and {runtime} is not "
            "installed on the server: the task's images cannot run here"
        )
