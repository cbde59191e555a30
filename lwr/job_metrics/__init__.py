"""Job metrics: Galaxy's instrumentation plugins run around every job's command.

Galaxy measures jobs with the plugins of the ``galaxy-job-metrics`` package (``core``,
``cpuinfo``, ``meminfo``, ``uname``, ``env``, ``hostname``, ``cgroup``): each contributes shell
commands run before and after the tool's command, which write ``__instrument_<plugin>_<name>``
files; Galaxy later parses those files itself. On a Pulsar-protocol server the commands must run
on the server, so LWR reads the same configuration file Galaxy and Pulsar read
(``job_metrics_conf.xml``, or YAML) with the same package — the commands and the file formats are
then exactly the ones Galaxy's parser expects — and puts the commands into the job script.

The files go to the job's ``metadata/`` directory: Galaxy's Pulsar runner collects job metrics
from its own ``<job working directory>/metadata`` after the client library has downloaded the
remote metadata directory's ``__instrument_*`` files (they are in the status answer's
``metadata_directory_contents`` and match the client's default collection pattern).

The package is optional (``pip install 'lwr[metrics]'``): it pulls in ``galaxy-util``, which a
server without metrics does not need. Configuring metrics without it stops the server at start-up
with the command to run.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from lwr.errors import ConfigurationError

log = logging.getLogger(__name__)

#: plugin commands interpolate paths unquoted, so the metadata path must be shell-inert
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_.,+=@%/:-]+\Z")

#: GALAXY_SLOTS (and GALAXY_MEMORY_MB) as Pulsar's job script sets them, so that ``core``
#: records what the job was given: the client's value, else the batch system's allocation, else 1
SLOTS_STATEMENT = """\
if [ -z "${GALAXY_SLOTS:-}" ]; then
    GALAXY_SLOTS="${SLURM_CPUS_ON_NODE:-${NSLOTS:-${PBS_NP:-${LSB_DJOB_NUMPROC:-1}}}}"
    export GALAXY_SLOTS
fi
if [ -z "${GALAXY_MEMORY_MB:-}" ] && [ -n "${SLURM_MEM_PER_NODE:-}" ]; then
    GALAXY_MEMORY_MB="$SLURM_MEM_PER_NODE"
    export GALAXY_MEMORY_MB
fi"""


class JobMetrics:
    """The configured plugins: shell commands for a job's metadata directory."""

    def __init__(self, config_file: Path) -> None:
        self.config_file = config_file
        self._instrumenter = _load(config_file)
        self.plugins = tuple(p.plugin_type for p in getattr(self._instrumenter, "plugins", ()))
        log.info("job metrics: plugins %s from %s", ", ".join(self.plugins), config_file)

    def commands(self, metadata_directory: Path) -> tuple[str, str]:
        """(before, after) shell commands writing ``__instrument_*`` into ``metadata_directory``."""
        where = str(metadata_directory)
        if not _SAFE_PATH.match(where):
            log.warning("job metrics: %r holds shell syntax; this job is not instrumented", where)
            return "", ""
        before = self._instrumenter.pre_execute_commands(where) or ""
        after = self._instrumenter.post_execute_commands(where) or ""
        header = f"# job metrics (galaxy-job-metrics: {', '.join(self.plugins)})"
        return f"{header}\n{SLOTS_STATEMENT}\n{before}", after


def _load(config_file: Path) -> Any:
    """The package's instrumenter for ``config_file``; every failure names the file."""
    try:
        from galaxy.job_metrics import JobInstrumenter
        from galaxy.job_metrics import JobMetrics as GalaxyJobMetrics
    except ImportError as exc:
        raise ConfigurationError(
            f"job_metrics_config_file needs the galaxy-job-metrics package ({exc}): "
            "pip install 'lwr[metrics]'"
        ) from None
    try:
        plugin_classes = GalaxyJobMetrics(conf_dict=[]).plugin_classes
        instrumenter = JobInstrumenter.from_file(plugin_classes, str(config_file))
    except Exception as exc:  # the package raises bare Exceptions for unknown plugins
        raise ConfigurationError(
            f"job_metrics_config_file {str(config_file)!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not getattr(instrumenter, "plugins", None):
        raise ConfigurationError(
            f"job_metrics_config_file {str(config_file)!r} enables no plugin "
            f"(known: {', '.join(sorted(plugin_classes))})"
        )
    return instrumenter
