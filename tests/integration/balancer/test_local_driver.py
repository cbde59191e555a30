"""The local driver with real processes: launch, adoption after a restart, pid reuse not
mistaken for a worker, the launch window of a balancer killed mid-launch, termination.

The workers here are stand-in processes (a sleeping Python in the worker's directory): what is
tested is the driver's bookkeeping; real LWR workers run in tests/integration/amqp/
test_balancer_e2e.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from lwr.balancer.config import BalancerConfig, load_balancer_config
from lwr.balancer.drivers.base import Worker
from lwr.balancer.drivers.local import RECORD, LocalDriver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SLEEPER = f"{sys.executable} -c 'import time; time.sleep(120)'"


@pytest.fixture
def config(tmp_path: Path) -> Iterator[BalancerConfig]:
    template = tmp_path / "worker"
    template.mkdir()
    (template / "server.ini").write_text("[app:main]\nuse = egg:lwr\npool_worker = true\n")
    (template / "stale.log").write_text("not copied")
    (tmp_path / "balancer.ini").write_text(
        f"[load table]\n0 1 2\n[driver:local]\nworker_template = worker\n"
        f"worker_command = {SLEEPER}\n"
    )
    config = load_balancer_config(tmp_path / "balancer.ini")
    yield config
    for process in psutil.process_iter(["cwd"]):  # nothing may outlive the test
        if str(config.state_directory) in (process.info.get("cwd") or ""):
            process.kill()


def worker_processes(config: BalancerConfig) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cwd", "status"]):
        cwd = process.info.get("cwd") or ""
        if cwd.startswith(str(config.state_directory)) and process.info["status"] != "zombie":
            found.append(process)
    return found


def test_launch_gives_each_worker_its_directory_and_id(config: BalancerConfig) -> None:
    driver = LocalDriver(config)
    assert driver.start() == []
    first, second = driver.launch(2)
    assert first.worker_id != second.worker_id and first.worker_id.startswith("lwr-")
    directory = config.state_directory / "workers" / first.worker_id
    assert (directory / "server.ini").exists() and not (directory / "stale.log").exists()
    record = json.loads((directory / RECORD).read_text())
    process = psutil.Process(record["pid"])
    assert process.environ()["LWR_POOL_WORKER_ID"] == first.worker_id
    assert process.create_time() == record["started"]
    assert os.getsid(process.pid) == process.pid  # a session of its own: survives the balancer
    assert set(driver.alive()) == {first.worker_id, second.worker_id}


def test_a_restarted_driver_adopts_instead_of_duplicating(config: BalancerConfig) -> None:
    before = LocalDriver(config)
    before.start()
    launched = {w.worker_id for w in before.launch(2)}
    after = LocalDriver(config)  # the balancer restarted (its old self may be dead)
    adopted = after.start()
    assert {w.worker_id for w in adopted} == launched and all(w.adopted for w in adopted)
    assert len(worker_processes(config)) == 2


def launch_one(config: BalancerConfig) -> tuple[Worker, Path, dict[str, Any]]:
    """One worker launched by a driver; its record's path and content."""
    driver = LocalDriver(config)
    driver.start()
    (worker,) = driver.launch(1)
    record_path = config.state_directory / "workers" / worker.worker_id / RECORD
    return worker, record_path, json.loads(record_path.read_text())


def test_a_reused_pid_is_not_mistaken_for_a_worker(config: BalancerConfig) -> None:
    _, record_path, record = launch_one(config)
    record["started"] -= 1000  # as if the recorded process died and the kernel reused its pid
    record_path.write_text(json.dumps(record))
    restarted = LocalDriver(config)
    assert restarted.start() == []
    assert psutil.pid_exists(record["pid"])  # the "other program" was left alone
    assert not record_path.exists()


def test_a_balancer_killed_mid_launch_leaves_no_orphan(config: BalancerConfig) -> None:
    worker, record_path, record = launch_one(config)
    record_path.write_text(json.dumps({**record, "pid": None, "started": None}))  # pre-Popen
    restarted = LocalDriver(config)
    (adopted,) = restarted.start()
    assert adopted.worker_id == worker.worker_id and adopted.where == f"pid {record['pid']}"
    assert json.loads(record_path.read_text())["pid"] == record["pid"]


def test_terminate_kills_and_forgets(config: BalancerConfig) -> None:
    driver = LocalDriver(config)
    driver.start()
    (worker,) = driver.launch(1)
    pid = int(worker.where.split()[1])
    driver.terminate(worker.worker_id)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert driver.alive() == {}


def test_a_worker_that_exits_is_forgotten(config: BalancerConfig) -> None:
    driver = LocalDriver(config)
    driver.start()
    (worker,) = driver.launch(1)
    os.kill(int(worker.where.split()[1]), signal.SIGTERM)
    psutil.Process(int(worker.where.split()[1])).wait(10)
    assert driver.alive() == {}
    assert LocalDriver(config).start() == []
