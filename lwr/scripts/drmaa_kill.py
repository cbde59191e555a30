"""Terminate one DRMAA job as the user running this helper (``sudo -u USER``).

stdin: ``{"external_id": "...", "environment": {...}}``. A job the scheduler no longer knows
counts as terminated. Exit 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import re
import sys

from lwr.errors import LwrError
from lwr.managers.drmaa_session import SharedSession
from lwr.scripts._request import read_request, rerun_if_needed

_JOB_ID = re.compile(r"[A-Za-z0-9_.\[\]-]+")


def main() -> int:
    """Read the request, make sure DRMAA's environment is in place, terminate the job."""
    raw = sys.stdin.read()
    try:
        request = read_request(raw)
        code = rerun_if_needed(__spec__.name, raw, request)
        if code is not None:
            return code
        external_id = str(request["external_id"])
        if not _JOB_ID.fullmatch(external_id):
            raise ValueError(f"not a job id: {external_id!r}")
        session = SharedSession.acquire()
        try:
            session.terminate(external_id)
        finally:
            session.release()
    except (LwrError, ValueError, KeyError) as exc:
        sys.stderr.write(f"drmaa_kill: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
