"""moto's S3 server, an EMULATOR of the S3 API (no AWS endpoint is reachable from CI), on a free
port, for tests of code that speaks S3 through boto3."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.integration.server import free_port

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def credentials() -> dict[str, Any]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"],
    }


@contextmanager
def moto_s3(log_directory: Path) -> Iterator[str]:
    """Start ``moto_server`` on a free port; yield its URL; stop it."""
    import boto3

    port = free_port()
    log = open(log_directory / "moto.log", "wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                boto3.client("s3", endpoint_url=url, **credentials()).list_buckets()
                break
            except Exception:
                assert process.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()
