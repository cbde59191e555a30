"""The client sub-commands of ``lwr``: ``submit``, ``status``, ``cancel``, ``list``, ``clean``.

``lwr.cli`` only calls :func:`register`; what each command means lives here and in
:mod:`lwr.client.submit`. All share the server options (``--url``, ``--private-token`` or
``LWR_PRIVATE_TOKEN``, ``--manager``). ``status``/``cancel``/``clean`` find a job this client
remembers (:mod:`lwr.client.known_jobs`) by its id alone; any other job needs ``--url``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from lwr.client import submit
from lwr.client.api import FINAL_STATES, JobClient
from lwr.client.known_jobs import KnownJob, KnownJobs
from lwr.client.transport import TransportOptions
from lwr.errors import LwrError, NotFoundError
from lwr.staging.transfer import RetryPolicy

Command = Callable[[argparse.Namespace], int]


def register(commands: Any) -> None:
    """Add the client sub-commands to ``lwr``'s sub-parsers (``add_subparsers()``'s result)."""
    parser = commands.add_parser("submit", help="run one command on an LWR server")
    add_server_options(parser, url_required=True)
    submit.add_arguments(parser)
    parser.set_defaults(func=submit.main)
    for name, function, what in (
        ("status", status, "show a job's state (--json: the whole status)"),
        ("cancel", cancel, "cancel a queued or running job"),
        ("clean", clean, "delete a job and its files from the server"),
    ):
        parser = commands.add_parser(name, help=what)
        add_server_options(parser, url_required=False)
        parser.add_argument("job_id", metavar="JOB")
        if name == "status":
            parser.add_argument("--json", action="store_true", help="print the status dictionary")
        parser.set_defaults(func=function)
    parser = commands.add_parser("list", help="the jobs this client left on servers")
    add_server_options(parser, url_required=False)
    parser.set_defaults(func=list_jobs)


def add_server_options(parser: argparse.ArgumentParser, url_required: bool) -> None:
    parser.add_argument(
        "--url",
        required=url_required,
        help="the server, e.g. http://host:8913/" + ("" if url_required else " (or remembered)"),
    )
    parser.add_argument(
        "--private-token",
        default=os.environ.get("LWR_PRIVATE_TOKEN"),
        help="the server's private_token (default: $LWR_PRIVATE_TOKEN)",
    )
    parser.add_argument("--manager", default=None, help="a named job manager of the server")


def status(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Print the job's state; exit 1 if the server does not have it."""
    job, client = _client(args)
    answer = client.status()
    if is_gone(answer):
        out.write(f"{job.job_id}: not on the server ({_where(job)}); cleaned already?\n")
        return 1
    if args.json:
        out.write(json.dumps(answer, indent=1, sort_keys=True) + "\n")
    else:
        out.write(f"{job.job_id}: {describe_status(answer)} ({_where(job)})\n")
    return 0


def cancel(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    job, client = _client(args)
    answer = client.status()
    before = answer.get("status")
    if is_gone(answer):
        out.write(f"{job.job_id}: not on the server ({_where(job)}); nothing to cancel\n")
        return 1
    if before in FINAL_STATES:
        out.write(f"{job.job_id}: already {before}; nothing to cancel\n")
        return 0
    client.cancel()
    out.write(f"{job.job_id}: cancelled (was {before})\n")
    return 0


def clean(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Delete the job on the server (cancelling it if it runs) and forget it here."""
    job, client = _client(args)
    try:
        client.clean()
        out.write(f"{job.job_id}: cleaned\n")
    except NotFoundError:
        out.write(f"{job.job_id}: not on the server (already cleaned?)\n")
    KnownJobs().forget(job)
    return 0


def list_jobs(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """One line per remembered job (newest first) with its state asked of its server now."""
    jobs = [
        job
        for job in KnownJobs().all()
        if (args.url is None or job.url.rstrip("/") == args.url.rstrip("/"))
        and (args.manager is None or job.manager == args.manager)
    ]
    if not jobs:
        out.write("no jobs remembered (lwr submit --keep leaves one here)\n")
        return 0
    out.write(f"{'JOB':<26} {'STATE':<22} {'SUBMITTED':<16} {'SERVER':<32} COMMAND\n")
    for job in jobs:
        client = _job_client(job, args.private_token, quick=True)
        try:
            answer = client.status()
            state = "gone (lwr clean it)" if is_gone(answer) else describe_status(answer)
        except NotFoundError:
            state = "gone (lwr clean it)"
        except LwrError:
            state = "unreachable"
        finally:
            client.close()
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.submitted))
        out.write(f"{job.job_id:<26} {state:<22} {when:<16} {_where(job):<32} {job.command}\n")
    return 0


def is_gone(answer: dict[str, Any]) -> bool:
    """True when the server does not know the job: Pulsar's protocol answers ``lost`` then
    (Galaxy's client expects a status, not a 404), so the reason is what tells it apart."""
    reason = str(answer.get("reason") or answer.get("stderr") or "")
    return answer.get("status") == "lost" and "unknown job" in reason


def describe_status(answer: dict[str, Any]) -> str:
    """``running``, or ``complete, return code 0`` once finished."""
    state = str(answer.get("status"))
    if state in FINAL_STATES and answer.get("returncode") is not None:
        return f"{state}, return code {answer['returncode']}"
    return state


def _client(args: argparse.Namespace) -> tuple[KnownJob, JobClient]:
    job = KnownJobs().find(args.job_id, args.url, args.manager)
    return job, _job_client(job, args.private_token)


def _job_client(job: KnownJob, token: str | None, quick: bool = False) -> JobClient:
    """A client for one job; ``quick`` gives up on an unreachable server at once (for lists)."""
    options = TransportOptions(retry=RetryPolicy(retries=0, timeout=10.0)) if quick else None
    return JobClient(job.url, job.job_id, private_token=token, manager=job.manager, options=options)


def _where(job: KnownJob) -> str:
    return job.url.rstrip("/") + "/" + (f"managers/{job.manager}/" if job.manager else "")
