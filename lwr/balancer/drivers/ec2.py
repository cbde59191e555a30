"""Workers on EC2 spot instances (boto3).

Every worker is one one-time spot request for one instance, bid at ``spot_bid`` (USD per hour, a
ceiling: while the current spot price is above it nothing is requested and the balancer waits,
logging why). Each request, its instance and the security group the driver creates carry the tags
``lwr:balancer = <name>`` and ``lwr:worker-id = <id>``, which is how a restarted balancer finds
them again: no duplicate request, no orphaned instance.

The instance's user data writes the worker template (``server.ini``, ``job_managers.ini``, ...)
with ``message_queue_url`` pointed at the broker and starts ``lwr serve`` with
``LWR_POOL_WORKER_ID`` set. It carries the broker's URL (with its password): anything on the
instance can read user data, so give workers a broker user of their own.

With no ``security_group`` configured, a group allowing the workers' ``ports`` (and 22 when an
``--ssh_key`` is given) only from the balancer's host is created on start and deleted on exit.
``endpoint_url`` points boto3 elsewhere than AWS (the tests use moto's EC2 emulator).
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import time
import uuid
from typing import Any, ClassVar
from urllib.parse import urlsplit

from lwr.balancer.drivers.base import Driver, Worker
from lwr.balancer.drivers.userdata import render_user_data
from lwr.config import parse_seconds
from lwr.errors import ConfigurationError

log = logging.getLogger(__name__)

TAG_BALANCER = "lwr:balancer"
TAG_WORKER = "lwr:worker-id"
LIVE_REQUEST = ("open", "active")
LIVE_INSTANCE = ("pending", "running")


class Ec2Driver(Driver):
    alias = "ec2"
    DEFAULTS: ClassVar[dict[str, str]] = {
        "instance_type": "t3.medium",
        "spot_bid": "",
        "image_id": "",
        "region": "us-east-1",
        "availability_zone": "",
        "subnet": "",
        "security_group": "",
        "ports": "8913",
        "allowed_cidr": "",
        "worker_template": "",
        "worker_message_queue_url": "",
        "worker_directory": "/opt/lwr/worker",
        "worker_command": "/opt/lwr/.venv/bin/lwr serve server.ini",
        "worker_user": "lwr",
        "endpoint_url": "",
        "refresh_seconds": "10",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.options
        for required in ("spot_bid", "image_id", "worker_template"):
            if not options[required]:
                raise ConfigurationError(f"[driver:ec2] {required} must be set")
        try:
            self.bid = float(options["spot_bid"])
        except ValueError:
            raise ConfigurationError("[driver:ec2] spot_bid must be USD per hour") from None
        self.ports = _ports(options["ports"])
        self.template = (self.config.path.parent / options["worker_template"]).resolve()
        if not (self.template / "server.ini").is_file():
            raise ConfigurationError(
                f"[driver:ec2] worker_template {self.template} has no server.ini"
            )
        self.refresh_seconds = parse_seconds(options["refresh_seconds"], "refresh_seconds")
        self._refreshed = float("-inf")
        self.client: Any = None
        self.group_id: str | None = None
        self.created_group = False
        #: worker id -> (spot request id, instance id or None, launched at)
        self.known: dict[str, tuple[str, str | None, float]] = {}

    @classmethod
    def needs_credentials(cls) -> bool:
        return True

    def tags(self, worker_id: str | None = None) -> list[dict[str, str]]:
        tags = [{"Key": TAG_BALANCER, "Value": self.config.name}]
        if worker_id:
            tags += [{"Key": TAG_WORKER, "Value": worker_id}, {"Key": "Name", "Value": worker_id}]
        return tags

    # -- start: the client, the security group, adoption ---------------------------------------

    def start(self) -> list[Worker]:
        self.client = self._client()
        self.group_id = self._security_group()
        self._refresh()
        workers = self._workers(adopted=True)
        return list(workers.values())

    def _client(self) -> Any:
        import boto3

        keys: dict[str, Any] = {}
        if self.credentials is not None:
            keys = {
                "aws_access_key_id": self.credentials.access_key,
                "aws_secret_access_key": self.credentials.secret_key,
                "aws_session_token": self.credentials.session_token,
            }
        session = boto3.session.Session(region_name=self.options["region"], **keys)
        return session.client("ec2", endpoint_url=self.options["endpoint_url"] or None)

    def _security_group(self) -> str:
        configured = self.options["security_group"]
        if configured:
            key = "group-id" if configured.startswith("sg-") else "group-name"
            found = self.client.describe_security_groups(
                Filters=[{"Name": key, "Values": [configured]}]
            )["SecurityGroups"]
            if not found:
                raise ConfigurationError(f"[driver:ec2] no security group {configured!r}")
            return str(found[0]["GroupId"])
        self.created_group = True
        name = f"lwr-balancer-{self.config.name}"
        mine = self.client.describe_security_groups(
            Filters=[{"Name": f"tag:{TAG_BALANCER}", "Values": [self.config.name]}]
        )["SecurityGroups"]
        if mine:  # left by a balancer that was killed: adopt it
            log.info("adopting security group %s (%s)", mine[0]["GroupId"], name)
            return str(mine[0]["GroupId"])
        return self._create_group(name)

    def _create_group(self, name: str) -> str:
        extra: dict[str, Any] = {}
        if self.options["subnet"]:
            subnet = self.client.describe_subnets(SubnetIds=[self.options["subnet"]])
            extra["VpcId"] = subnet["Subnets"][0]["VpcId"]
        group = self.client.create_security_group(
            GroupName=name,
            Description=f"LWR pool workers of balancer {self.config.name}",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": self.tags()}],
            **extra,
        )["GroupId"]
        cidr = self.options["allowed_cidr"] or f"{_own_address(self.config.message_queue_url)}/32"
        ports = [*self.ports, *([22] if self.ssh_key else [])]
        self.client.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": cidr}]}
                for p in ports
            ],
        )
        log.info("created security group %s (%s): ports %s from %s", group, name, ports, cidr)
        return str(group)

    # -- launching ------------------------------------------------------------------------------

    def current_price(self) -> float | None:
        """The lowest current spot price for the instance type (in the configured zone)."""
        query: dict[str, Any] = {
            "InstanceTypes": [self.options["instance_type"]],
            "ProductDescriptions": ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
            "StartTime": time.time() - 3600,
        }
        if self.options["availability_zone"]:
            query["AvailabilityZone"] = self.options["availability_zone"]
        history = self.client.describe_spot_price_history(**query)["SpotPriceHistory"]
        latest: dict[str, tuple[Any, float]] = {}
        for entry in history:
            zone = entry["AvailabilityZone"]
            if zone not in latest or entry["Timestamp"] > latest[zone][0]:
                latest[zone] = (entry["Timestamp"], float(entry["SpotPrice"]))
        return min((price for _, price in latest.values()), default=None)

    def launch(self, count: int) -> list[Worker]:
        price = self.current_price()
        if price is not None and price > self.bid:
            log.warning(
                "spot price of %s is %.5f USD/h, above the bid %.5f: launching nothing, waiting",
                self.options["instance_type"],
                price,
                self.bid,
            )
            return []
        return [self._request_one() for _ in range(count)]

    def _request_one(self) -> Worker:
        worker_id = f"{self.config.name}-{uuid.uuid4().hex[:10]}"
        spec: dict[str, Any] = {
            "ImageId": self.options["image_id"],
            "InstanceType": self.options["instance_type"],
            "UserData": base64.b64encode(self.user_data(worker_id).encode()).decode(),
        }
        if self.options["subnet"]:
            spec["SubnetId"] = self.options["subnet"]
            spec["SecurityGroupIds"] = [self.group_id]
        else:
            spec["SecurityGroups"] = [self._group_name()]
        if self.options["availability_zone"]:
            spec["Placement"] = {"AvailabilityZone": self.options["availability_zone"]}
        if self.ssh_key:
            spec["KeyName"] = self.ssh_key
        answer = self.client.request_spot_instances(
            SpotPrice=f"{self.bid:.5f}",
            InstanceCount=1,
            Type="one-time",
            LaunchSpecification=spec,
            TagSpecifications=[
                {"ResourceType": "spot-instances-request", "Tags": self.tags(worker_id)}
            ],
        )
        request = answer["SpotInstanceRequests"][0]
        now = time.time()
        self.known[worker_id] = (request["SpotInstanceRequestId"], None, now)
        log.info(
            "requested spot instance for worker %s (%s, bid %.5f)",
            worker_id,
            request["SpotInstanceRequestId"],
            self.bid,
        )
        return Worker(worker_id, now, request["SpotInstanceRequestId"])

    def user_data(self, worker_id: str) -> str:
        url = self.options["worker_message_queue_url"] or self.config.message_queue_url
        return render_user_data(
            self.template,
            worker_id,
            url,
            self.options["worker_directory"],
            self.options["worker_command"],
            self.options["worker_user"],
        )

    def _group_name(self) -> str:
        groups = self.client.describe_security_groups(GroupIds=[self.group_id])["SecurityGroups"]
        return str(groups[0]["GroupName"])

    # -- following and stopping -------------------------------------------------------------

    def alive(self) -> dict[str, Worker]:
        """Our workers, re-read from EC2 at most every ``refresh_seconds`` (the loop asks every
        second; launches and terminations update the view at once)."""
        if time.monotonic() - self._refreshed >= self.refresh_seconds:
            self._refresh()
        return self._workers(adopted=False)

    def _refresh(self) -> None:
        """Re-read our spot requests and instances (by tag); tag instances new to us."""
        self._refreshed = time.monotonic()
        mine = [{"Name": f"tag:{TAG_BALANCER}", "Values": [self.config.name]}]
        requests = self.client.describe_spot_instance_requests(Filters=mine)
        found: dict[str, tuple[str, str | None, float]] = {}
        for request in requests["SpotInstanceRequests"]:
            worker_id = _tag(request, TAG_WORKER)
            if worker_id is None or request["State"] not in LIVE_REQUEST:
                continue
            since = self.known.get(worker_id, ("", None, time.time()))[2]
            found[worker_id] = (request["SpotInstanceRequestId"], request.get("InstanceId"), since)
        states = self._instance_states([i for _, i, _ in found.values() if i])
        for worker_id, (_, instance_id, _) in list(found.items()):
            if instance_id is None:
                continue
            state, tagged = states.get(instance_id, ("terminated", True))
            if state not in LIVE_INSTANCE:
                del found[worker_id]
            elif not tagged:
                self.client.create_tags(Resources=[instance_id], Tags=self.tags(worker_id))
        for worker_id in set(self.known) - set(found):
            log.info("worker %s has no live spot request or instance any more", worker_id)
        self.known = found

    def _instance_states(self, instance_ids: list[str]) -> dict[str, tuple[str, bool]]:
        if not instance_ids:
            return {}
        states = {}
        for page in self.client.describe_instances(InstanceIds=instance_ids)["Reservations"]:
            for instance in page["Instances"]:
                tagged = _tag(instance, TAG_WORKER) is not None
                states[instance["InstanceId"]] = (instance["State"]["Name"], tagged)
        return states

    def _workers(self, adopted: bool) -> dict[str, Worker]:
        return {
            worker_id: Worker(worker_id, since, instance or request, adopted)
            for worker_id, (request, instance, since) in self.known.items()
        }

    def terminate(self, worker_id: str) -> None:
        request_id, instance_id, _ = self.known.pop(worker_id, (None, None, 0.0))
        if request_id:
            self.client.cancel_spot_instance_requests(SpotInstanceRequestIds=[request_id])
        if instance_id:
            self.client.terminate_instances(InstanceIds=[instance_id])
        log.info("terminated worker %s (%s, %s)", worker_id, request_id, instance_id)

    def close(self, workers_left: bool = False) -> None:
        if self.client is None or not self.created_group or workers_left or not self.group_id:
            return
        self._wait_instances_gone()
        self.client.delete_security_group(GroupId=self.group_id)
        log.info("deleted security group %s", self.group_id)

    def _wait_instances_gone(self, timeout: float = 600.0) -> None:
        """A group cannot be deleted while a (terminating) instance still uses it."""
        deadline = time.monotonic() + timeout
        users = [{"Name": "instance.group-id", "Values": [self.group_id]}]
        while time.monotonic() < deadline:
            left = [
                i
                for r in self.client.describe_instances(Filters=users)["Reservations"]
                for i in r["Instances"]
                if i["State"]["Name"] != "terminated"
            ]
            if not left:
                return
            time.sleep(2)


def _tag(resource: dict[str, Any], key: str) -> str | None:
    for tag in resource.get("Tags") or []:
        if tag["Key"] == key:
            return str(tag["Value"])
    return None


def _ports(text: str) -> list[int]:
    ports = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not ports or not all(p.isdigit() and 0 < int(p) < 65536 for p in ports):
        raise ConfigurationError(f"[driver:ec2] ports must be TCP port numbers, not {text!r}")
    return [int(p) for p in ports]


def _own_address(broker_url: str) -> str:
    """The address this host reaches the broker from: the source workers will see."""
    host = urlsplit(broker_url).hostname or "8.8.8.8"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
