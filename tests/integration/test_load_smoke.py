"""The shared-service load test, headless and short: ``python -m bench.load`` as CI runs it.

A real LWR (started by the runner as users start it, with the dashboard's ``shout`` tool), ten
Locust users each with a service user's own token, 25 seconds: seven on the API (listing,
setting up, uploading, submitting, polling, downloading with bytes checked, cleaning) and three
in the dashboard as a browser (sign-in form and its CSRF token, session cookie, job list, the
submit form's multipart upload, the job's page reloaded until done, the result downloaded and
checked, sign-out now and then). Asserts that nothing failed and that every kind of request was
made; never a timing (the machine is shared).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.server import REPO

pytestmark = [pytest.mark.integration]

#: what every run must have made: the protocol's steps, the listing and the job round trip
EXPECTED = {
    "/jobs (list)",
    "/jobs (setup)",
    "/jobs/{id}/files (upload)",
    "/jobs/{id}/submit",
    "/jobs/{id}/status",
    "/jobs/{id}/files (download)",
    "/jobs/{id} (clean)",
    "UI /ui/sign-in (form)",
    "UI /ui/sign-in (post)",
    "UI /ui/jobs",
    "UI /ui/submit (form)",
    "UI /ui/submit (post)",
    "UI /ui/jobs/{id}",
    "UI /ui/jobs/{id}/files (download)",
}


def test_load_smoke(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    argv = [
        sys.executable,
        "-m",
        "bench.load",
        "--users",
        "10",
        "--spawn-rate",
        "5",
        "--time",
        "25",
        "--ui-share",
        "0.3",
        "--sample-every",
        "5",
        "--out",
        str(out),
        "--workdir",
        str(tmp_path),
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240)
    locust_log = (tmp_path / "locust.log").read_text(errors="replace")[-3000:]
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{locust_log}"
    result = json.loads(out.read_text())
    by_name = {row["name"]: row for row in result["stats"]}
    assert EXPECTED <= set(by_name), sorted(by_name)
    assert all(row["failures"] == 0 for row in result["stats"]), result["failures"]
    assert result["failures"] == [] and result["server_tracebacks"] == 0
    assert result["jobs"]["jobs"] > 0
    assert result["rss_start"] > 0 and result["rss_end"] > 0 and len(result["rss_samples"]) >= 3
