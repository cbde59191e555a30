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
import shlex
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from lwr.client.api import JobClient
from lwr.client.transport import TransportOptions
from tests.conftest import require_service
from tests.integration.conftest import ServerFactory
from tests.integration.server import LwrServer

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


def _https_server(factory: ServerFactory) -> tuple[LwrServer, Path]:
    """A server with a generated certificate, and the PEM file holding it."""
    server = factory(app_options={"ssl_pem": "*"}, scheme="https")
    found = re.search(r"self-signed certificate \((\S+\.pem)\)", server.log())
    assert found, server.log()
    return server, Path(found.group(1))


def _workdir_upload_url(server: LwrServer, client: JobClient, name: str) -> str:
    """Where Galaxy's transports POST a ``workdir`` file, by the certificate's host name."""
    base = server.url.replace("127.0.0.1", "localhost").rstrip("/")
    query = urlencode({"job_id": client.job_id, "name": name, "type": "workdir"})
    return f"{base}/jobs/{client.job_id}/files?{query}"


def test_pulsar_urllib_upload_over_https(
    lwr_server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Galaxy's urllib transport, trusting the generated certificate as Galaxy would a real one.

    (The curl transport ignores ``SSL_CERT_FILE``: see the next test.)
    """
    from pulsar.client.transport import get_transport

    server, pem = _https_server(lwr_server_factory)
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))  # OpenSSL's default trust, read per call
    client = _client(server.url, "pulsar-urllib")
    source = tmp_path / "random.bin"
    digest = _random_file(source)
    url = _workdir_upload_url(server, client, "p.bin")
    answer = json.loads(get_transport("urllib").execute(url, method="POST", input_path=str(source)))
    assert Path(answer["path"]).name == "p.bin"
    assert _stored_digest(client, "p.bin", tmp_path / "back.bin") == digest


#: the CA bundle pycurl's wheel picks when it starts (the first of its built-in list that exists;
#: Debian's, written by update-ca-certificates) and hands libcurl as CAINFO
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

_CURL_UPLOAD = """
import json, sys
from pulsar.client.transport import get_transport
try:
    answer = get_transport("curl").execute(sys.argv[1], method="POST", input_path=sys.argv[2])
    print(answer.decode())
except Exception as exc:
    print(json.dumps({"failed": str(exc)}))
"""


def _can_bind_mount() -> bool:
    """Root with a mount namespace of its own (CI runs as root), and a Debian-style store."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not SYSTEM_BUNDLE.is_file():
        return False
    probe = ["unshare", "--mount", "--propagation", "private", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _curl_upload(url: str, source: Path, bundle: Path | None) -> dict[str, str]:
    """Galaxy's curl transport POSTs ``source`` to ``url`` in a child process; with ``bundle``,
    inside a private mount namespace whose system CA bundle is ``bundle`` (this machine's own
    store is never changed)."""
    python = [sys.executable, "-c", _CURL_UPLOAD, url, str(source)]
    if bundle is None:
        argv = python
    else:
        mount = f'mount --bind {shlex.quote(str(bundle))} {SYSTEM_BUNDLE} && exec "$@"'
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"]
        argv += python
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    answer: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_pulsar_curl_upload_over_https_with_the_ca_in_the_system_store(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Galaxy's curl transport (``transport: curl``), verifying the certificate.

    pycurl's wheel ignores ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``: it sets
    libcurl's CA file to the system bundle it finds at start-up. A site with a private CA adds it
    to the system store (``update-ca-certificates`` on Debian, ``update-ca-trust`` on RHEL),
    which is what the bind mount simulates: the system bundle plus this server's certificate.
    Without it the same upload fails with curl error 60 — the certificate really is checked.
    """
    require_service(_can_bind_mount(), "needs root and unshare to stand in a system CA store")
    server, pem = _https_server(lwr_server_factory)
    text = pem.read_text()
    certificate = text[text.index("-----BEGIN CERTIFICATE-----") :]
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_text(SYSTEM_BUNDLE.read_text() + "\n" + certificate)
    client = _client(server.url, "pulsar-curl")
    source = tmp_path / "random.bin"
    digest = _random_file(source)
    url = _workdir_upload_url(server, client, "c.bin")
    refused = _curl_upload(url, source, None)
    assert "transport code: 60" in refused.get("failed", ""), refused  # untrusted without it
    answer = _curl_upload(url, source, bundle)
    assert Path(answer["path"]).name == "c.bin", answer
    assert _stored_digest(client, "c.bin", tmp_path / "back.bin") == digest
