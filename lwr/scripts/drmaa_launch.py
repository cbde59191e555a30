"""Submit one job through DRMAA as the user running this helper (``sudo -u USER``).

stdin: ``{"job": <JobDescription fields>, "environment": {...}}``; stdout: the job id.
Exit 1 with the reason on stderr when the scheduler refuses.
"""

from __future__ import annotations

import sys

from lwr.errors import LwrError
from lwr.managers.drmaa_session import JobDescription, SharedSession
from lwr.scripts._request import read_request, rerun_if_needed


def main() -> int:
    """Read the request, make sure DRMAA's environment is in place, submit, print the id."""
    raw = sys.stdin.read()
    try:
        request = read_request(raw)
        code = rerun_if_needed(__spec__.name, raw, request)
        if code is not None:
            return code
        description = JobDescription.from_dict(request["job"])
        session = SharedSession.acquire()
        try:
            external_id = session.run_job(description)
        finally:
            session.release()
    except (LwrError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"drmaa_launch: {exc}\n")
        return 1
    sys.stdout.write(f"{external_id}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
