"""The ec2 driver against moto's EC2 server, an emulator: no AWS endpoint can be reached from
here, so what is shown is that the driver makes the right EC2 calls (security group, spot requests
with the bid, tags, user data, adoption by tag, termination), as moto answers them. moto's spot
price history is fixed at 0.00001 USD/h, so "price above the bid" is a bid below that.
"""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lwr.balancer.config import BalancerConfig, load_balancer_config
from lwr.balancer.daemon import GONE_GRACE, Balancer
from lwr.balancer.drivers.base import Credentials
from lwr.balancer.drivers.ec2 import TAG_BALANCER, TAG_WORKER, Ec2Driver
from tests.integration.server import free_port
from tests.unit.balancer.fakes import Clock, MemoryBroker

boto3 = pytest.importorskip("boto3")
pytestmark = [pytest.mark.integration, pytest.mark.moto, pytest.mark.timeout(120)]

KEYS = Credentials("AKIAEMULATOR0000", "emulator-secret")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's EC2 emulator on a free port, for this module."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "moto did not start"
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


@pytest.fixture
def ec2(moto_url: str) -> Any:
    return boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


def configure(tmp_path: Path, moto_url: str, ec2: Any, bid: str = "0.05") -> BalancerConfig:
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (tmp_path / "worker").mkdir(exist_ok=True)
    (tmp_path / "worker" / "server.ini").write_text(
        "[server:main]\nuse = egg:lwr#webless\n\n[app:main]\nuse = egg:lwr\n"
        "message_queue_url = amqp://localhost//\npool_worker = true\n"
    )
    (tmp_path / "worker" / "job_managers.ini").write_text(
        "[manager:_default_]\ntype = queued_python\n"
    )
    name = f"t{time.time_ns() % 10**9}"
    (tmp_path / "balancer.ini").write_text(
        f"[balancer]\nname = {name}\ndriver = ec2\ndrain_timeout = 12\n"
        "message_queue_url = amqp://pool:secret@broker.example.org//\n"
        "[load table]\n0 1 1\n0.5 1 3\n2 2 4\n"
        f"[driver:ec2]\nspot_bid = {bid}\nimage_id = {image}\nworker_template = worker\n"
        f"endpoint_url = {moto_url}\nports = 8913, 9100\nallowed_cidr = 10.1.2.3/32\n"
        "instance_type = t3.micro\nrefresh_seconds = 0\n"
    )
    return load_balancer_config(tmp_path / "balancer.ini")


def mine(ec2: Any, config: BalancerConfig, what: str) -> list[dict[str, Any]]:
    tag = [{"Name": f"tag:{TAG_BALANCER}", "Values": [config.name]}]
    if what == "groups":
        return list(ec2.describe_security_groups(Filters=tag)["SecurityGroups"])
    if what == "requests":
        return list(ec2.describe_spot_instance_requests(Filters=tag)["SpotInstanceRequests"])
    found = ec2.describe_instances(Filters=tag)["Reservations"]
    return [i for r in found for i in r["Instances"]]


def test_group_spot_requests_tags_user_data_adoption_and_cleanup(
    tmp_path: Path, moto_url: str, ec2: Any
) -> None:
    config = configure(tmp_path, moto_url, ec2)
    driver = Ec2Driver(config, KEYS, ssh_key="admin-key")
    assert driver.start() == []
    (group,) = mine(ec2, config, "groups")
    rules = {(p["FromPort"], r["CidrIp"]) for p in group["IpPermissions"] for r in p["IpRanges"]}
    assert rules == {(8913, "10.1.2.3/32"), (9100, "10.1.2.3/32"), (22, "10.1.2.3/32")}
    launched = driver.launch(2)
    requests = mine(ec2, config, "requests")
    assert len(requests) == 2 and {r["SpotPrice"][:4] for r in requests} == {"0.05"}
    assert {r["LaunchSpecification"]["KeyName"] for r in requests} == {"admin-key"}
    assert set(driver.alive()) == {w.worker_id for w in launched}  # ... and tags the instances
    instances = mine(ec2, config, "instances")
    assert {t["Value"] for i in instances for t in i["Tags"] if t["Key"] == TAG_WORKER} == {
        w.worker_id for w in launched
    }
    data = ec2.describe_instance_attribute(
        InstanceId=instances[0]["InstanceId"], Attribute="userData"
    )["UserData"]["Value"]
    script = base64.b64decode(data).decode()
    assert "message_queue_url = amqp://pool:secret@broker.example.org//" in script
    assert "LWR_POOL_WORKER_ID=" in script and "[manager:_default_]" in script
    assert KEYS.secret_key not in script and KEYS.access_key not in script

    restarted = Ec2Driver(config, KEYS)  # a balancer killed with -9 comes back
    adopted = restarted.start()
    assert {w.worker_id for w in adopted} == {w.worker_id for w in launched}
    assert len(mine(ec2, config, "groups")) == 1 and len(mine(ec2, config, "requests")) == 2
    for worker in launched:
        restarted.terminate(worker.worker_id)
    assert restarted.alive() == {}
    states = {i["State"]["Name"] for i in mine(ec2, config, "instances")}
    assert states <= {"shutting-down", "terminated"}
    restarted.close()
    assert mine(ec2, config, "groups") == []


def test_no_launch_while_the_spot_price_is_above_the_bid(
    tmp_path: Path, moto_url: str, ec2: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = configure(tmp_path, moto_url, ec2, bid="0.000001")
    driver = Ec2Driver(config, KEYS)
    driver.start()
    caplog.set_level(logging.WARNING, "lwr.balancer")
    assert driver.launch(3) == []
    assert mine(ec2, config, "requests") == []
    assert "above the bid 0.00000: launching nothing, waiting" in caplog.text
    driver.close()


def test_the_balancer_scales_out_and_in_and_terminates_on_exit(
    tmp_path: Path, moto_url: str, ec2: Any
) -> None:
    config = configure(tmp_path, moto_url, ec2)
    clock = Clock()
    broker = MemoryBroker(clock)
    broker.waiting = lambda queue: broker.queue  # type: ignore[method-assign]
    driver = Ec2Driver(config, KEYS)
    balancer = Balancer(config, driver, broker, clock=clock, sleep=clock.sleep)
    balancer.start()
    broker.queue = 60
    clock.now += 30
    assert balancer.poll().after == 4
    workers = sorted(driver.alive())
    assert len(mine(ec2, config, "requests")) == 4 and len(workers) == 4
    broker.queue = 0
    for worker in workers:
        broker.report(worker, received=15)
    clock.now += 30
    decision = balancer.poll()  # nothing arrives any more, all idle: back to row 1 [1, 1]
    assert decision.after == 1 and len(broker.drains) == 3
    for worker in broker.drains:
        broker.report(worker, received=15, draining=True, gone=True)
    balancer.tick()
    clock.now += GONE_GRACE
    balancer.tick()  # the instances of the workers that said gone are terminated
    running = [i for i in mine(ec2, config, "instances") if i["State"]["Name"] == "running"]
    assert len(running) == 1 and balancer.counts["killed"] == 0  # gone, not killed
    balancer.shutdown()  # terminate_on_exit: the last one drains, is killed at its deadline
    assert {i["State"]["Name"] for i in mine(ec2, config, "instances")} <= {
        "shutting-down",
        "terminated",
    }
    assert mine(ec2, config, "groups") == []
