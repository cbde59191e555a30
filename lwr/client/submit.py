"""``lwr submit``: run one shell command on an LWR server, for people outside Galaxy.

    lwr submit --url http://host:8913 --input a.txt --output out.txt -- 'sort a.txt > out.txt'

The names given with ``--input``/``--output`` are found in the command as whole words and
rewritten to the server's paths; inputs are staged, outputs fetched back to where they were named.
The job's stdout and stderr are printed and the command exits with the job's return code.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from lwr.client.actions import ClientActions
from lwr.client.api import JobClient
from lwr.client.job import ExpectedOutputs, InputFile, JobDescription
from lwr.client.runner import JobResult, run_job
from lwr.client.transport import TransportOptions
from lwr.errors import InvalidRequestError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sub-command's options (``lwr.cli`` owns the parser, this module its meaning)."""
    parser.add_argument("--url", required=True, help="the server, e.g. http://host:8913/")
    parser.add_argument("--private-token", default=None, help="the server's private_token")
    parser.add_argument("--manager", default=None, help="a named job manager of the server")
    parser.add_argument(
        "--input", action="append", default=[], metavar="FILE", help="a file the command reads"
    )
    parser.add_argument(
        "--output", action="append", default=[], metavar="FILE", help="a file it writes"
    )
    parser.add_argument("--default-file-action", default="transfer")
    parser.add_argument("--file-action-config", default=None, help="YAML/JSON rule file")
    parser.add_argument("--timeout", type=float, default=None, help="give up after N seconds")
    parser.add_argument("--keep", action="store_true", help="do not clean the job afterwards")
    parser.add_argument(
        "--checksum", action="store_true", help="check every file moved by SHA-256 where offered"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- 'the command line'")


def main(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the command; print its streams; return its return code (1 if it never ran)."""
    words = [w for w in args.command if w != "--"] if args.command else []
    if not words:
        raise InvalidRequestError("no command given: put it after --, e.g. -- 'sort a.txt'")
    command = " ".join(words)
    job_id = "lwr-submit-" + uuid.uuid4().hex[:12]
    client = JobClient(
        args.url,
        job_id,
        private_token=args.private_token,
        manager=args.manager,
        options=TransportOptions(checksum=args.checksum),
    )
    actions = ClientActions.load(args.default_file_action, args.file_action_config)
    with tempfile.TemporaryDirectory(prefix="lwr-submit-") as scratch:
        description = describe(command, args.input, args.output, job_id, Path(scratch))
        clean = "never" if args.keep else "always"
        result = run_job(client, description, actions, timeout=args.timeout, clean=clean)
    return report(result, out, err)


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


def report(result: JobResult, out: TextIO, err: TextIO) -> int:
    """Print the job's streams and what went wrong; the job's return code, or 1."""
    out.write(result.stdout)
    err.write(result.stderr)
    for error in result.errors:
        err.write(f"lwr submit: {error}\n")
    if result.state != "complete" or result.returncode is None:
        return 1
    if result.errors:
        return result.returncode or 1
    return result.returncode
