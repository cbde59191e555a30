"""Galaxy's resubmission of a job LWR lost: the job keeps its id and runs again on LWR.

The environment ``rest_resubmit`` carries a ``resubmit`` rule (``any_failure``) to a second
destination on the same LWR server whose jobs' environment has ``LWR_TEST_SLEEP=0``. The sleep
tool's first attempt is killed outright (script and command), so LWR reports it ``lost``; Galaxy's
Pulsar runner fails the job through its runner-state handlers, which resubmit it; the second
attempt, set up under the same job id while LWR still holds the lost first one, finishes at once.

Only over REST: Galaxy (26.1.2) never resubmits a job its message-queue runner hears failed or
lost — it handles each status update with a job wrapper whose destination is rebuilt from the
database (``JobDestination(from_job=job)``), which has no ``resubmit`` rules, so the resubmit
handler returns at once. LWR's side of a resubmission over the message queue is tested with
Galaxy's client library in tests/integration/amqp/test_amqp_resubmit.py.
"""

from __future__ import annotations

import pytest

from tests.integration.galaxy.api import INPUT, Galaxy
from tests.integration.galaxy.test_cancel import _started_job
from tests.integration.test_job_lifecycle import job_processes

pytestmark = [pytest.mark.integration, pytest.mark.galaxy, pytest.mark.timeout(900)]


def test_a_lost_job_is_resubmitted_and_runs_again(galaxy: Galaxy) -> None:
    environment = "rest_resubmit"
    env = galaxy.environments[environment]
    run = galaxy.run("sleep", environment, galaxy.input_dataset())
    job_id = run["jobs"][0]["id"]
    job_directory = _started_job(env.jobs_directory)
    lwr_id = job_directory.name
    working = job_directory / "working"
    (working / "lwr_test_started").unlink()  # attempt 2 touches it again
    galaxy.wait_state(job_id, {"running"})
    for proc in job_processes(str(working)):
        proc.kill()  # the script too: no return code, so LWR reports the job lost

    job = galaxy.wait(job_id, timeout=240)
    assert job["state"] == "ok", job
    assert galaxy.content(run["outputs"][0]["id"]) == INPUT
    assert (working / "lwr_test_started").exists()
    log = env.server.log()
    assert f"job _default_/{lwr_id}: finished lost" in log
    assert f"job _default_/{lwr_id}: set up again, attempt 2" in log
    assert f"Job will be resubmitted to '{environment}_retry'" in galaxy.process.log_text()
