"""LWR's own client: run a job on an LWR (or Pulsar 0.16) server from Python or the shell.

Everything Galaxy's Pulsar job runner does over HTTP, in small pieces: :mod:`.transport` (HTTP
with keep-alive, streaming, retries), :mod:`.api` (one method per wire call), :mod:`.actions`
(which file moves how), :mod:`.stage_in` / :mod:`.stage_out`, and :func:`run_job` tying them
together. Imports :mod:`lwr.errors` and :mod:`lwr.staging` only, never the server's code, so it
installs and runs on a machine that will never serve.
"""

from __future__ import annotations

from lwr.client.actions import ClientActions
from lwr.client.api import JobClient
from lwr.client.job import ExpectedOutputs, InputFile, JobDescription
from lwr.client.runner import CallbackWaiter, JobResult, PollingWaiter, run_job
from lwr.client.transport import TransportOptions

__all__ = [
    "CallbackWaiter",
    "ClientActions",
    "ExpectedOutputs",
    "InputFile",
    "JobClient",
    "JobDescription",
    "JobResult",
    "PollingWaiter",
    "TransportOptions",
    "run_job",
]
