"""The local driver removes a stopped worker's directory when nothing is left to hand back, and
keeps it (saying so) when the worker died holding unfinished jobs.

Real LWR pool workers started by the balancer's local driver from a balancer site's template
(tests/integration/balancer/site.py), the real broker, Galaxy's client.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from lwr.balancer.config import load_balancer_config
from lwr.balancer.drivers.local import RECORD, LocalDriver
from lwr.balancer.drivers.local_state import unfinished_jobs
from tests.integration.amqp.pool_support import finals
from tests.integration.amqp.support import Client
from tests.integration.balancer.site import BalancerSite
from tests.integration.files_endpoint import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq, pytest.mark.timeout(180)]


def driver_of(site: BalancerSite) -> LocalDriver:
    driver = LocalDriver(load_balancer_config(site.directory / "balancer.ini"))
    driver.start()
    return driver


def launched(driver: LocalDriver) -> tuple[str, Path, int]:
    """One more worker, once it consumes the setup queue: its id, directory and pid."""
    (worker,) = driver.launch(1)
    directory = driver.root / worker.worker_id
    wait_for(lambda: "as pool worker" in _log(directory), 60, what="the worker consuming")
    return worker.worker_id, directory, int(worker.where.split()[1])


def _log(directory: Path) -> str:
    path = directory / "worker.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_a_drained_worker_leaves_no_directory(
    site: BalancerSite, client_factory: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lwr.balancer")
    driver = driver_of(site)
    worker_id, directory, pid = launched(driver)
    client = client_factory(site.manager)
    client.setup("quick", "echo quick")
    assert client.wait_status("quick", "complete")["stdout"] == "quick\n"
    wait_for(lambda: "final status complete published" in _log(directory), what="the ack")
    assert (directory / "files").is_dir()  # it has a job store and staging area of its own
    os.kill(pid, signal.SIGTERM)  # a drain: it finishes what it holds (nothing) and exits 0
    wait_for(lambda: driver.alive() == {}, 60, what="the worker's exit")
    assert not directory.exists()
    assert f"worker {worker_id} exited with status 0 with nothing left to hand back" in caplog.text
    assert finals(client) == {"quick": 1}


def test_a_worker_killed_holding_a_job_keeps_its_directory(
    site: BalancerSite,
    client_factory: Callable[..., Client],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger="lwr.balancer")
    driver = driver_of(site)
    doomed_id, doomed, _ = launched(driver)
    client = client_factory(site.manager)
    pid_file = tmp_path / "first.pid"
    # long on the first worker, quick when run again on another one
    client.setup("held", f"if [ -e {pid_file} ]; then echo again; else echo $$ > {pid_file}; "
                 "sleep 300; fi")  # fmt: skip
    client.wait_status("held", "running")
    first_run = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
    driver.terminate(doomed_id)  # as after a drain timeout: SIGKILL
    assert doomed.is_dir() and not (doomed / RECORD).exists()
    assert unfinished_jobs(doomed) == 1
    assert f"worker {doomed_id} was killed by signal 9 with 1 unfinished job(s)" in caplog.text
    assert f"keeping {doomed}" in caplog.text
    wait_for(lambda: not psutil.pid_exists(first_run), what="the first run to die with its worker")
    # the job runs again on a new worker, exactly once; that worker, drained, leaves nothing
    _, other, other_pid = launched(driver)
    assert client.wait_status("held", "complete", timeout=60)["stdout"] == "again\n"
    wait_for(lambda: "final status complete published" in _log(other), what="the ack")
    os.kill(other_pid, signal.SIGTERM)
    wait_for(lambda: driver.alive() == {}, 60, what="the second worker's exit")
    assert not other.exists() and doomed.is_dir()
    assert finals(client) == {"held": 1}
    # a restarted balancer leaves the kept directory alone (it has no record any more)
    assert driver_of(site).start() == [] and doomed.is_dir()


def test_a_restarted_balancer_removes_a_dead_idle_workers_directory(
    site: BalancerSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lwr.balancer")
    worker_id, directory, pid = launched(driver_of(site))
    os.kill(pid, signal.SIGKILL)  # died while the balancer was away; it held nothing
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
    assert driver_of(site).alive() == {}
    assert not directory.exists()
    assert f"worker {worker_id} stopped (its exit status is unknown" in caplog.text
