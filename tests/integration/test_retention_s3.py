"""The ``s3`` archive store against moto's S3 server — an EMULATOR of S3 (no AWS endpoint is
reachable from CI), started here on a free port.

moto keeps the Glacier storage class (a GET of a cold object is refused until it is restored),
but it accepts every restore tier and restores at once: it cannot refuse an ``Expedited``
restore. The refusal is therefore injected at :meth:`S3Store.request_restore`, the store's one
call of ``RestoreObject``, and the fallback to ``Standard`` then really goes to moto. The last
test runs a real server with ``retention_store = s3`` end to end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lwr.service.retention.settings import RetentionConfig
from lwr.service.retention.stores import file_sha256
from lwr.service.retention.stores.s3 import S3Store
from tests.integration.moto_s3 import AWS, credentials, moto_s3
from tests.integration.server import write_server_ini
from tests.integration.test_retention_server import ADMIN, PLANS, Service

pytestmark = [pytest.mark.integration]

BUCKET = "lwr-archives"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_s3(tmp_path_factory.mktemp("moto")) as url:
        boto3.client("s3", endpoint_url=url, **credentials()).create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture
def store(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)
    config = RetentionConfig(store="s3", s3_bucket=BUCKET, s3_endpoint_url=endpoint)
    return S3Store(config)


def archive_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "a.tar.gz"
    path.write_bytes(os.urandom(70_000))
    return path, file_sha256(path)


def test_an_archive_is_cold_until_restored_expedited_first(store: S3Store, tmp_path: Path) -> None:
    path, sha256 = archive_file(tmp_path)
    store.put("m/alice/j.1", path, sha256)
    key = "lwr-archive/m/alice/j.1.tar.gz"
    head = store.client.head_object(Bucket=BUCKET, Key=key)
    assert head["StorageClass"] == "GLACIER"
    assert store.check("m/alice/j.1", path.stat().st_size, sha256)
    assert not store.check("m/alice/j.1", path.stat().st_size, "0" * 64)
    with pytest.raises(ClientError, match="InvalidObjectState"):
        store.client.get_object(Bucket=BUCKET, Key=key)
    assert store.prepare("m/alice/j.1") and store.last_tier == "Expedited"
    store.fetch("m/alice/j.1", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == path.read_bytes()
    assert store.keys() == ["m/alice/j.1"]
    store.delete("m/alice/j.1")
    store.delete("m/alice/j.1")  # gone already: not an error
    assert store.keys() == []


def test_a_refused_expedited_restore_falls_back_to_standard(store: S3Store, tmp_path: Path) -> None:
    path, sha256 = archive_file(tmp_path)
    store.put("m/bob/k.2", path, sha256)
    asked: list[str] = []
    real = store.request_restore

    def refuse_expedited(key: str, tier: str) -> None:
        asked.append(tier)
        if tier == "Expedited":
            error = {"Code": "GlacierExpeditedRetrievalNotAvailable", "Message": "no capacity"}
            raise ClientError({"Error": error}, "RestoreObject")
        real(key, tier)

    store.request_restore = refuse_expedited  # type: ignore[method-assign]
    assert store.prepare("m/bob/k.2")
    assert asked == ["Expedited", "Standard"] and store.last_tier == "Standard"
    store.fetch("m/bob/k.2", tmp_path / "back")
    assert file_sha256(tmp_path / "back") == sha256
    store.delete("m/bob/k.2")


def test_a_server_archives_to_s3_and_restores_on_upgrade(
    endpoint: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path_factory.mktemp("retention-s3")
    (directory / "plans.yml").write_text(PLANS)
    service = Service(directory)
    options = {
        "private_token": ADMIN,
        "plans": "plans.yml",
        "retention_scan_interval": "0.3",
        "retention_store": "s3",
        "retention_s3_bucket": BUCKET,
        "retention_s3_endpoint_url": endpoint,
    }
    write_server_ini(directory, service.server.port, options)
    for key, value in AWS.items():  # the server and `lwr users` inherit the credentials
        monkeypatch.setenv(key, value)
    service.tokens["carol"] = service.users("add", "carol")["token"]
    service.start()
    try:
        s3: Any = boto3.client("s3", endpoint_url=endpoint, **credentials())
        service.run("carol", "c1", "in glacier")
        service.until("carol", "c1", archived=True)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert keys == ["lwr-archive/_default_/carol/c1.1.tar.gz"]
        assert service.download("carol", "c1")[0] == 409
        service.users("set-plan", "carol", "premium")
        service.until("carol", "c1", archived=False)
        assert service.download("carol", "c1") == (200, b"in glacier")
        assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="lwr-archive/_default_/c")
        assert "Expedited restore" in service.server.log()
    finally:
        service.server.stop()
