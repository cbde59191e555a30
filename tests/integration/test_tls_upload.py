"""Uploads over HTTPS store exactly the bytes sent.

The server reads plain-HTTP upload bodies straight from the socket (``splice``, or ``recv_into``
past cheroot's buffer); on a TLS socket those bytes are ciphertext, so the fast path must stay off
there. Every other upload test runs over plain HTTP, so these are the tests that fail if an upload
path skips that check: a multi-MiB random file goes up with :mod:`lwr.client` (Content-Length) and
with a chunked ``Transfer-Encoding`` body and with Galaxy's urllib transport (as a ``workdir``
file), and comes back as ``output_workdir`` over HTTPS, and from the server's disk, byte for
byte with the same SHA-256.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import ssl
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from lwr.client.api import JobClient
from lwr.client.transport import TransportOptions
from tests.integration.conftest import ServerFactory

pytestmark = pytest.mark.integration

SIZE = 6 * 1024 * 1024 + 12345  # several MiB and not a whole number of any buffer size


def _random_file(path: Path) -> str:
    data = os.urandom(SIZE)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _client(url: str, job_id: str) -> JobClient:
    client = JobClient(url, job_id, options=TransportOptions(verify_tls=False, checksum=True))
    client.setup()
    return client


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _stored_digest(client: JobClient, name: str, target: Path) -> str:
    """The SHA-256 of what the server stored, read back over HTTPS and straight from its disk."""
    assert client.download("output_workdir", name, target) == SIZE
    on_disk = Path(client.remote_path("output_workdir", name)).read_bytes()
    assert on_disk == target.read_bytes()
    return hashlib.sha256(on_disk).hexdigest()


def test_upload_over_https_stores_the_bytes_sent(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory(app_options={"ssl_pem": "*"}, scheme="https")
    assert server.url.startswith("https://")
    source = tmp_path / "random.bin"
    digest = _random_file(source)
    client = _client(server.url, "tls-upload")
    remote = client.upload(source, "workdir", "random.bin")
    assert Path(remote).name == "random.bin"
    back = tmp_path / "back.bin"
    assert _stored_digest(client, "random.bin", back) == digest
    assert back.read_bytes() == source.read_bytes()


def test_chunked_upload_over_https_stores_the_bytes_sent(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory(app_options={"ssl_pem": "*"}, scheme="https")
    source = tmp_path / "random.bin"
    digest = _random_file(source)
    client = _client(server.url, "tls-chunked")
    parts = urlsplit(server.url)
    query = urlencode({"job_id": client.job_id, "name": "chunked.bin", "type": "workdir"})
    base = parts.path.rstrip("/")
    conn = http.client.HTTPSConnection(
        parts.hostname or "127.0.0.1", parts.port, context=_unverified(), timeout=120
    )
    try:

        def pieces() -> object:
            with source.open("rb") as handle:
                while block := handle.read(1024 * 1024 - 7):
                    yield block

        conn.request(
            "POST",
            f"{base}/jobs/{client.job_id}/files?{query}",
            body=pieces(),  # type: ignore[arg-type]
            encode_chunked=True,
        )
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200, answer
    back = tmp_path / "back.bin"
    assert _stored_digest(client, "chunked.bin", back) == digest


def test_pulsar_urllib_upload_over_https(
    lwr_server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Galaxy's urllib transport, trusting the generated certificate as Galaxy would a real one.

    Not the curl transport: it sets no CA file and libcurl reads no CA variable from the
    environment, so it could only trust this certificate if it were added to the system's store.
    """
    from pulsar.client.transport import get_transport

    server = lwr_server_factory(app_options={"ssl_pem": "*"}, scheme="https")
    found = re.search(r"self-signed certificate \((\S+\.pem)\)", server.log())
    assert found, server.log()
    monkeypatch.setenv("SSL_CERT_FILE", found.group(1))  # OpenSSL's default trust, read per call
    client = _client(server.url, "pulsar-urllib")
    source = tmp_path / "random.bin"
    digest = _random_file(source)
    base = server.url.replace("127.0.0.1", "localhost").rstrip("/")  # the certificate's name
    query = urlencode({"job_id": client.job_id, "name": "p.bin", "type": "workdir"})
    url = f"{base}/jobs/{client.job_id}/files?{query}"
    answer = json.loads(get_transport("urllib").execute(url, method="POST", input_path=str(source)))
    assert Path(answer["path"]).name == "p.bin"
    assert _stored_digest(client, "p.bin", tmp_path / "back.bin") == digest
