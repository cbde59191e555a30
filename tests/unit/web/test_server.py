"""LWR's cheroot runner: a real server on a free port, plain HTTP and HTTPS with ``ssl_pem``."""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from cheroot import wsgi
from cryptography import x509
from cryptography.x509.oid import NameOID

from lwr.app import LwrApp
from lwr.config import load_app_config
from lwr.errors import ConfigurationError
from lwr.web import server as server_module
from lwr.web.dispatch import LwrWsgiApp
from lwr.web.server import build_server, generate_self_signed, serve_forever, server_runner

TOKEN = "t0ken"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Generated certificates land in tmp_path instead of the system temp directory."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def lwr_app(tmp_path: Path) -> Iterator[LwrWsgiApp]:
    here = tmp_path / "server"
    here.mkdir()
    app = LwrApp(load_app_config({"private_token": TOKEN}, here=here))
    app.start()
    yield LwrWsgiApp(app)
    app.stop()


Serve = Callable[..., str]


@pytest.fixture
def serve(private_tmp: Path) -> Iterator[Serve]:
    """``serve(app, **build_server_options)`` starts a server in a thread; returns its URL."""
    running: list[tuple[wsgi.Server, threading.Thread]] = []

    def start(app: Any, **options: Any) -> str:
        port = free_port()
        server = build_server(app, host="127.0.0.1", port=port, threads=4, **options)
        thread = threading.Thread(target=server.safe_start, daemon=True)
        thread.start()
        running.append((server, thread))
        for _ in range(500):
            if server.ready:
                break
            threading.Event().wait(0.01)
        assert server.ready, "the server did not start"
        scheme = "https" if options.get("ssl_pem") else "http"
        return f"{scheme}://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.stop()
        thread.join(timeout=10)


def test_plain_http_serves_the_protocol(lwr_app: LwrWsgiApp, serve: Serve) -> None:
    base = serve(lwr_app)
    response = requests.get(f"{base}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    response = requests.get(f"{base}/jobs/1/status", timeout=10)
    assert response.status_code == 403
    assert response.json() == {"error": "missing or wrong private_token"}
    response = requests.get(f"{base}/jobs/1/status", params={"private_token": TOKEN}, timeout=10)
    assert response.json()["status"] == "lost"


def test_large_uploads_and_downloads_stream_through(lwr_app: LwrWsgiApp, serve: Serve) -> None:
    base = serve(lwr_app)
    params = {"private_token": TOKEN}
    assert (
        requests.post(f"{base}/jobs", params={**params, "job_id": "1"}, timeout=10).status_code
        == 200
    )
    payload = os.urandom(3 * 1024 * 1024 + 17)

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    response = requests.post(
        f"{base}/jobs/1/files",
        params={**params, "type": "input", "name": "big.bin"},
        data=chunks(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["size"] == len(payload)
    staged = Path(response.json()["path"])
    assert staged.read_bytes() == payload
    outputs = staged.parent.parent / "outputs"
    (outputs / "big.out").write_bytes(payload)
    response = requests.get(
        f"{base}/jobs/1/files", params={**params, "type": "output", "name": "big.out"}, timeout=30
    )
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(payload))
    assert response.content == payload


def test_https_with_a_generated_certificate(
    lwr_app: LwrWsgiApp, serve: Serve, private_tmp: Path
) -> None:
    base = serve(lwr_app, ssl_pem="*")
    assert base.startswith("https://")
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        response = requests.get(f"{base}/healthz", verify=False, timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    (pem,) = private_tmp.glob("lwr-selfsigned-*.pem")
    # the certificate is valid for 'localhost': a client that trusts it verifies the connection
    response = requests.get(
        f"https://localhost:{base.rsplit(':', 1)[1]}/healthz", verify=str(pem), timeout=10
    )
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{base}/healthz", timeout=10)  # an untrusting client refuses it
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(base.replace("https://", "http://") + "/healthz", timeout=10)


def test_generated_certificate_and_key_are_private(private_tmp: Path) -> None:
    path = Path(generate_self_signed("lwr.example.org"))
    assert path.parent == private_tmp
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0  # the key is readable by us only
    text = path.read_text()
    assert "PRIVATE KEY" in text
    cert = x509.load_pem_x509_certificate(text.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "lwr.example.org"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["lwr.example.org"]
    context = ssl.create_default_context()
    context.load_cert_chain(path)  # certificate and key belong together


def test_an_existing_pem_file_is_used(lwr_app: LwrWsgiApp, serve: Serve, tmp_path: Path) -> None:
    pem = Path(generate_self_signed())
    base = serve(lwr_app, ssl_pem=str(pem))
    served = ssl.get_server_certificate(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    expected = x509.load_pem_x509_certificate(pem.read_bytes())
    assert x509.load_pem_x509_certificate(served.encode()) == expected


def test_a_missing_pem_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        build_server(lambda e, s: [], port=free_port(), ssl_pem=str(tmp_path / "absent.pem"))


def test_server_runner_refuses_unknown_options() -> None:
    with pytest.raises(ConfigurationError, match="prot"):
        server_runner(lambda e, s: [], {}, host="127.0.0.1", prot="8913")


def test_server_runner_takes_ssl_pem_from_the_app_config(
    lwr_app: LwrWsgiApp, monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    """server_runner would block serving; the fake serve_forever only captures the built server."""
    built: list[wsgi.Server] = []
    monkeypatch.setattr(server_module, "serve_forever", built.append)
    monkeypatch.setattr(lwr_app, "lwr_config", dataclasses.replace(lwr_app.lwr_config, ssl_pem="*"))
    server_runner(lwr_app, {}, host="127.0.0.1", port=str(free_port()), threads="2")
    (server,) = built
    assert server.ssl_adapter is not None
    assert server.numthreads == 2
    built.clear()
    server_runner(lambda e, s: [], {}, port=str(free_port()))
    assert built[0].ssl_adapter is None


def test_serve_forever_runs_until_stopped(
    lwr_app: LwrWsgiApp, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    server = build_server(lwr_app, port=port)
    thread = threading.Thread(target=serve_forever, args=(server,), daemon=True)
    thread.start()
    for _ in range(500):
        if server.ready:
            break
        threading.Event().wait(0.01)
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    server.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert f"serving on http://127.0.0.1:{port}" in capsys.readouterr().out


@pytest.mark.parametrize("ssl_pem", [None, "*"])
def test_downloads_by_sendfile_or_tls_keep_the_connection_usable(
    lwr_app: LwrWsgiApp, serve: Serve, ssl_pem: str | None
) -> None:
    """Plain HTTP downloads go through sendfile, TLS ones through cheroot's writer; both must
    deliver the exact bytes and leave a keep-alive connection ready for the next request."""
    base = serve(lwr_app, **({"ssl_pem": ssl_pem} if ssl_pem else {}))
    params = {"private_token": TOKEN}
    with requests.Session() as session:
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=False
        session.verify = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            config = session.post(f"{base}/jobs", params={**params, "job_id": "dl"}, timeout=10)
            outputs = Path(config.json()["outputs_directory"])
            payloads = {"a.bin": os.urandom(5 * 1024 * 1024 + 3), "empty.bin": b""}
            for name, payload in payloads.items():
                (outputs / name).write_bytes(payload)
            for _ in range(2):
                for name, payload in payloads.items():
                    response = session.get(
                        f"{base}/jobs/dl/files",
                        params={**params, "type": "output", "name": name},
                        timeout=30,
                    )
                    assert response.status_code == 200
                    assert response.content == payload
            head = session.head(
                f"{base}/jobs/dl/files",
                params={**params, "type": "output", "name": "a.bin"},
                timeout=10,
            )
            assert head.headers["Content-Length"] == str(len(payloads["a.bin"]))
            assert session.get(f"{base}/healthz", timeout=10).json()["status"] == "ok"


def test_uploads_read_from_the_socket_keep_the_connection_usable(
    lwr_app: LwrWsgiApp, serve: Serve, body_path: tuple[str, list[int]]
) -> None:
    """Known-length uploads bypass cheroot's reader (splice, or readinto where splice is absent
    or refused); bodies small enough to arrive with the headers, empty ones and multi-chunk ones
    must all land intact, one after another on one keep-alive connection, and leave it ready for
    the next request."""
    base = serve(lwr_app)
    params = {"private_token": TOKEN}
    with requests.Session() as session:
        session.trust_env = False
        session.post(f"{base}/jobs", params={**params, "job_id": "up"}, timeout=10)
        for index, payload in enumerate(
            [b"tiny", b"", os.urandom(9 * 1024 * 1024 + 5), b"x" * 70_000, b"after"]
        ):
            response = session.put(
                f"{base}/jobs/up/files",
                params={**params, "type": "input", "name": f"f{index}"},
                data=payload,
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert Path(response.json()["path"]).read_bytes() == payload
        assert session.get(f"{base}/healthz", timeout=10).json()["status"] == "ok"
    # the multi-MiB body went through the kernel copy only where splice works
    mode, spliced = body_path
    assert (sum(spliced) > 8 * 1024 * 1024) == (mode == "splice")
