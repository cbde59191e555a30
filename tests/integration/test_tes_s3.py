"""``s3://`` inputs and outputs of TES tasks, against moto's S3 server.

moto's server is an EMULATOR of the S3 API (no AWS endpoint is reachable here); the fixture starts
it on a free port and the LWR server reaches it the way a site would reach MinIO or Ceph, through
boto3's standard ``AWS_ENDPOINT_URL_S3`` and credentials in the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import tes

from tests.integration.server import LwrServer, free_port, write_server_ini

pytestmark = pytest.mark.integration

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server (an emulator) on a free port."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            boto3.client("s3", endpoint_url=url, **_credentials()).list_buckets()
            break
        except Exception:
            assert process.poll() is None and time.monotonic() < deadline, "moto did not start"
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(10)
    log.close()


def _credentials() -> dict[str, Any]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def server(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LwrServer]:
    directory = tmp_path_factory.mktemp("tes-s3")
    port = free_port()
    write_server_ini(directory, port)
    env = {**os.environ, **AWS, "AWS_ENDPOINT_URL_S3": s3_endpoint}
    lwr = LwrServer(directory, port, env=env).start()
    yield lwr
    lwr.stop()


def test_s3_inputs_and_outputs(server: LwrServer, s3_endpoint: str) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **_credentials())
    s3.create_bucket(Bucket="tes")
    s3.put_object(Bucket="tes", Key="in/one.txt", Body=b"one\n")
    s3.put_object(Bucket="tes", Key="tree/a.txt", Body=b"a")
    s3.put_object(Bucket="tes", Key="tree/deep/b.txt", Body=b"bb")
    client = tes.HTTPClient(server.url, timeout=30)
    task = tes.Task(
        inputs=[
            tes.Input(path="/in/one.txt", url="s3://tes/in/one.txt"),
            tes.Input(path="/in/tree", url="s3://tes/tree", type="DIRECTORY"),
        ],
        executors=[
            tes.Executor(
                image="x",
                command=[
                    "sh",
                    "-c",
                    "cat /in/one.txt /in/tree/a.txt /in/tree/deep/b.txt > /out/all",
                ],
            )
        ],
        outputs=[
            tes.Output(path="/out/all", url="s3://tes/results/all.txt"),
            tes.Output(path="/out/*", path_prefix="/out", url="s3://tes/glob"),
        ],
    )
    task_id = client.create_task(task)
    deadline = time.monotonic() + 60
    while (done := client.get_task(task_id, view="FULL")).state not in (
        "COMPLETE",
        "EXECUTOR_ERROR",
        "SYSTEM_ERROR",
    ):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    assert done.state == "COMPLETE", (done.logs, server.log())
    assert s3.get_object(Bucket="tes", Key="results/all.txt")["Body"].read() == b"one\nabb"
    assert s3.get_object(Bucket="tes", Key="glob/all")["Body"].read() == b"one\nabb"
    assert {o.url for o in done.logs[0].outputs} == {
        "s3://tes/results/all.txt",
        "s3://tes/glob/all",
    }


def test_missing_s3_object_is_a_system_error(server: LwrServer) -> None:
    client = tes.HTTPClient(server.url, timeout=30)
    task_id = client.create_task(
        tes.Task(
            inputs=[tes.Input(path="/in/x", url="s3://tes/no/such/key")],
            executors=[tes.Executor(image="x", command=["true"])],
        )
    )
    deadline = time.monotonic() + 60
    while (done := client.get_task(task_id, view="FULL")).state in ("QUEUED", "INITIALIZING"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert done.state == "SYSTEM_ERROR"
    assert any("s3://tes/no/such/key" in line for line in done.logs[0].system_logs)
    info = client.get_service_info()
    assert "s3://" in info.storage
