"""``lwr submit``: run one shell command on an LWR server, for people outside Galaxy.

    lwr submit --url http://host:8913 --input a.txt --output out.txt -- 'sort a.txt > out.txt'

The names given with ``--input``/``--output`` are found in the command as whole words and
rewritten to the server's paths; inputs are staged, outputs fetched back to where they were named.
The job's stdout and stderr are printed and the command exits with the job's return code.

A job is never left behind silently: on Ctrl-C, on ``--timeout`` and on any failure after the
server set the job up, the job is cancelled and cleaned (only cancelled with ``--keep``), and
its id and what was done are printed. The exit codes follow coreutils' ``timeout`` (see
:data:`EXIT_CODES`), so a script can tell the job's own failure from LWR's.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from lwr.client.actions import ClientActions
from lwr.client.api import JobClient
from lwr.client.job import ExpectedOutputs, InputFile, JobDescription
from lwr.client.known_jobs import KnownJob, KnownJobs, new_entry
from lwr.client.runner import JobResult, run_job
from lwr.client.transport import TransportOptions
from lwr.errors import InvalidRequestError, JobTimeoutError, LwrError, NotFoundError

EXIT_USAGE = 2
EXIT_TIMEOUT = 124
EXIT_FAILED = 125
EXIT_INTERRUPTED = 130
#: what ``lwr submit`` exits with besides the job's own return code (documented in docs/client.md)
EXIT_CODES = {
    EXIT_USAGE: "bad arguments (nothing was sent to the server)",
    EXIT_TIMEOUT: "--timeout passed: the job was cancelled (and cleaned unless --keep)",
    EXIT_FAILED: "LWR failed: the job could not be set up, staged or run, ended failed, lost or "
    "cancelled on the server, or an output did not arrive",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): the job was cancelled (and cleaned unless --keep)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sub-command's own options (the server options come from :mod:`lwr.client.commands`)."""
    parser.add_argument(
        "--input", action="append", default=[], metavar="FILE", help="a file the command reads"
    )
    parser.add_argument(
        "--output", action="append", default=[], metavar="FILE", help="a file it writes"
    )
    parser.add_argument("--default-file-action", default="transfer")
    parser.add_argument("--file-action-config", default=None, help="YAML/JSON rule file")
    parser.add_argument(
        "--timeout", type=float, default=None, help="cancel the job if not finished after N s"
    )
    parser.add_argument(
        "--keep", action="store_true", help="do not clean the job afterwards (see lwr clean)"
    )
    parser.add_argument("--job-id", default=None, help="the job's id (default: a random one)")
    parser.add_argument(
        "--checksum", action="store_true", help="check every file moved by SHA-256 where offered"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- 'the command line'")


@dataclass
class Submission:
    """What one ``lwr submit`` has done so far: enough to undo it when it is cut short."""

    client: JobClient
    entry: KnownJob
    known: KnownJobs
    set_up: bool = False
    outputs: dict[str, str] = field(default_factory=dict)  # absolute path -> name as given

    def on_setup(self, job_id: str) -> None:
        """The server has the job: from now on it must be cleaned (or listed by lwr list)."""
        self.entry = KnownJob(
            job_id, self.entry.url, self.entry.manager, self.entry.command, self.entry.submitted
        )
        self.set_up = True
        self.known.remember(self.entry)


def main(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the command; print its streams; return its return code or one of :data:`EXIT_CODES`."""
    words = [w for w in args.command if w != "--"] if args.command else []
    if not words:
        err.write("lwr submit: no command given: put it after --, e.g. -- 'sort a.txt'\n")
        return EXIT_USAGE
    command = " ".join(words)
    job_id = args.job_id or "lwr-submit-" + uuid.uuid4().hex[:12]
    client = JobClient(
        args.url,
        job_id,
        private_token=args.private_token,
        manager=args.manager,
        options=TransportOptions(checksum=args.checksum),
    )
    job = Submission(client, new_entry(job_id, args.url, args.manager, command), KnownJobs())
    with tempfile.TemporaryDirectory(prefix="lwr-submit-") as scratch:
        try:
            actions = ClientActions.load(args.default_file_action, args.file_action_config)
            description = describe(command, args.input, args.output, job_id, Path(scratch))
        except (LwrError, ValueError) as exc:  # the arguments, a rule file: nothing sent yet
            err.write(f"lwr submit: {getattr(exc, 'message', exc)}\n")
            return EXIT_USAGE
        job.outputs = {os.path.abspath(name): name for name in args.output}
        clean = "never" if args.keep else "always"
        try:
            result = run_job(
                client, description, actions, timeout=args.timeout, clean=clean,
                on_setup=job.on_setup,
            )  # fmt: skip
        except KeyboardInterrupt:
            return abandon(job, args.keep, "interrupted", EXIT_INTERRUPTED, err)
        except JobTimeoutError as exc:
            return abandon(job, args.keep, exc.message, EXIT_TIMEOUT, err)
        except LwrError as exc:
            return abandon(job, args.keep, exc.message, EXIT_FAILED, err)
    if result.cleaned:
        job.known.forget(job.entry)
    return report(result, job, out, err)


def abandon(job: Submission, keep: bool, why: str, code: int, err: TextIO) -> int:
    """Cancel the cut-short job (and clean it unless ``keep``); say what was done; ``code``.

    A second Ctrl-C stops the tidying, and the message then says what is left to do by hand.
    """
    job_id = job.client.job_id
    if not job.set_up:
        err.write(f"lwr submit: {why}; job {job_id} was not created on the server\n")
        return code
    done: list[str] = []
    try:
        try:
            job.client.cancel()
            done.append("cancelled")
        except NotFoundError:
            done.append("already gone from the server")
        if not keep and "cancelled" in done:
            job.client.clean()
            done.append("cleaned")
            job.known.forget(job.entry)
    except KeyboardInterrupt:
        done.append("interrupted again before it was tidied up")
    except LwrError as exc:
        done.append(f"could not be tidied up ({exc.message})")
    if "cleaned" not in done and "already gone from the server" not in done:
        done.append(f"see: lwr status {job_id} / lwr clean {job_id}")
    err.write(f"lwr submit: {why}; job {job_id}: {', '.join(done)}\n")
    return code


def describe(
    command: str, inputs: list[str], outputs: list[str], job_id: str, scratch: Path
) -> JobDescription:
    """The job: the command with every named file made absolute, so staging can rewrite it."""
    for name in inputs:
        if not os.path.isfile(name):
            raise InvalidRequestError(f"input {name!r} does not exist")
    basenames = [os.path.basename(o) for o in outputs]
    if len(set(basenames)) != len(basenames):
        raise InvalidRequestError("outputs must have distinct file names")
    for name in [*inputs, *outputs]:
        word = re.compile(rf"(?<![\w./-]){re.escape(name)}(?![\w./-])")
        command = word.sub(_literal(os.path.abspath(name)), command)
    working = scratch / "working"
    working.mkdir()
    return JobDescription(
        command_line=command,
        job_id=job_id,
        inputs=[InputFile(os.path.abspath(p)) for p in inputs],
        tool_id="lwr_submit",
        working_directory=str(working),
        outputs=ExpectedOutputs(
            output_files=[os.path.abspath(p) for p in outputs], dynamic_outputs=[]
        ),
    )


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement inserting ``text`` as is (no backslash escapes)."""
    return lambda _match: text


def report(result: JobResult, job: Submission, out: TextIO, err: TextIO) -> int:
    """Print the job's streams and every problem; the job's return code or :data:`EXIT_FAILED`.

    An output named with ``--output`` that the job never wrote is a failure naming it, not a
    silent success: the person asked for that file.
    """
    out.write(result.stdout)
    err.write(result.stderr)
    problems = list(result.errors)
    missing = result.collected.missing if result.collected else []
    for path in missing:
        name = job.outputs.get(path, path)
        problems.append(f"output {name!r} was not produced by the job")
    for problem in problems:
        err.write(f"lwr submit: job {result.job_id}: {problem}\n")
    if result.state != "complete" or result.returncode is None:
        return EXIT_FAILED
    if problems:
        return result.returncode or EXIT_FAILED
    return result.returncode
