#!/usr/bin/env python
"""Run LWR's sanity job against a running LWR (or Pulsar) server and print a pass/fail report.

    python run_client_tests.py --url=http://localhost:8913 [--private_token T]
        [--default_file_action A] [--file_action_config F] [--files_endpoint URL]

One line per check; exits 0 only when every check passed. The job's files live in a temporary
directory, removed afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from lwr.client import JobClient, TransportOptions
from lwr.client.actions import CLIENT_ACTIONS
from lwr.client.sanity import Scenario, format_report
from lwr.errors import LwrError
from lwr.staging.transfer import redact_url

ACTIONS = (*CLIENT_ACTIONS, "remote_transfer", "remote_copy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:8913/")
    parser.add_argument("--private_token", "--private-token", default=None)
    parser.add_argument("--default_file_action", "--default-file-action", default="transfer")
    parser.add_argument("--file_action_config", "--file-action-config", default=None)
    parser.add_argument("--files_endpoint", "--files-endpoint", default=None)
    parser.add_argument("--manager", default=None, help="a named manager of the server")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds the job may take")
    parser.add_argument("--keep", action="store_true", help="keep the job's local files")
    parser.add_argument("--debug", action="store_true", help="log the client's requests")
    parser.add_argument(
        "--checksum", action="store_true", help="check every file moved by SHA-256 where offered"
    )
    args = parser.parse_args(argv)
    if args.default_file_action not in ACTIONS:
        parser.error(f"--default_file_action must be one of {', '.join(ACTIONS)}")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="lwr-client-tests-"))
    scenario = Scenario(root)
    try:
        scenario.prepare()
        client = JobClient(
            args.url,
            scenario.job_id,
            private_token=args.private_token,
            manager=args.manager,
            options=TransportOptions(progress=False, checksum=args.checksum),
        )
        print(f"LWR client sanity job {scenario.job_id} on {redact_url(args.url)}")
        print(f"default file action: {args.default_file_action}")
        _result, checks = scenario.run(
            client,
            args.default_file_action,
            extra_rules=args.file_action_config,
            files_endpoint=args.files_endpoint,
            timeout=args.timeout,
        )
        ok = format_report(checks, print)
    except LwrError as exc:
        print(f"FAIL  {exc.message}")
        ok = False
    finally:
        if args.keep:
            print(f"files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
