"""Staging a finished job out: fetch every output the client expects, by its action.

Which files to fetch is decided by :func:`lwr.staging.outputs.plan_outputs` — the same code the
server runs when it sends outputs itself — from the expected outputs and the listings in the final
status (declared outputs, ``from_work_dir`` files, ``<name>_files`` extra files, the version file,
dynamic outputs matched by pattern or named in ``galaxy.json``). This module only carries the plan
out: ``transfer`` downloads, ``copy``/``symlink`` copy from the server's disk, ``remote_*`` were
sent by the server already, ``none``/``rewrite`` stay where the job wrote them.

A failure to fetch one file does not stop the others: every failure is reported, the way Galaxy's
client collects all of them before deciding the job's fate. A ``from_work_dir`` output the job
did not write is tolerated (Galaxy makes it an empty dataset).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwr.client.actions import ClientActions
from lwr.client.api import JobClient
from lwr.errors import LwrError, NotFoundError
from lwr.staging.outputs import Output, plan_outputs

log = logging.getLogger(__name__)


@dataclass
class Collected:
    """What stage-out did: files fetched (with their action), left to the server, and failures."""

    fetched: list[tuple[Output, str]] = field(default_factory=list)
    left: list[tuple[Output, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def collect_outputs(
    client: JobClient,
    actions: ClientActions,
    client_outputs: Mapping[str, Any],
    status: Mapping[str, Any],
) -> Collected:
    """Fetch the outputs of a finished job whose final status is ``status``."""
    plan = plan_outputs(client_outputs, _posix_listings(status))
    result = Collected(missing=list(plan.missing))
    for output in plan.outputs:
        decision = actions.decide(output.path, output.output_type)
        kind = decision.action_type
        if decision.is_remote or not decision.moves:
            result.left.append((output, kind))
            continue
        target = Path(output.path)
        try:
            if kind == "transfer":
                client.download(output.output_type, output.name, target)
            else:  # copy, and symlink, which for outputs means copy (the job dir is cleaned)
                client.copy_out(output.output_type, output.name, target)
        except NotFoundError as exc:
            if output.output_type == "output_workdir":
                log.info("working-directory output %s not found: %s", output.name, exc.message)
                continue
            result.failures.append(f"{output.output_type} {output.name!r}: {exc.message}")
            continue
        except (LwrError, OSError) as exc:
            message = exc.message if isinstance(exc, LwrError) else str(exc)
            result.failures.append(f"{output.output_type} {output.name!r}: {message}")
            continue
        log.debug("collected %s %s into %s (%s)", output.output_type, output.name, target, kind)
        result.fetched.append((output, kind))
    return result


def _posix_listings(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """The status with listing names in ``/`` syntax, whatever the server's separator."""
    separator = (status.get("system_properties") or {}).get("separator") or "/"
    if separator == "/":
        return status
    fixed = dict(status)
    for key in (
        "working_directory_contents",
        "outputs_directory_contents",
        "metadata_directory_contents",
        "job_directory_contents",
    ):
        if fixed.get(key):
            fixed[key] = [str(name).replace(separator, "/") for name in fixed[key]]
    return fixed
