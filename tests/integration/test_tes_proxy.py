"""TES ``http(s)`` transfers through an operator's forward proxy (``tes_http_proxy``): real servers.

A site whose outgoing traffic must pass a proxy names it in ``server.ini``; a task's inputs
are fetched and its outputs PUT through it (plain http as absolute-form requests, https in a
``CONNECT`` tunnel with TLS end to end), with the proxy's credentials, the proxy reached over
plain TCP or over TLS (TLS inside TLS for an https target). The environment's
``http_proxy`` family is set to a dead end and must not matter. A service user's targets are
judged first, exactly as without a proxy: an internal one fails the task and the proxy never
hears of it. Wrong credentials fail the task with the reason, and the password shows nowhere.
``py-tes`` is the client; the file stores and the proxy (tests.notify_servers.ForwardProxy)
are real servers on loopback; https (the targets' and an https proxy's certificates) is
verified by ``tes_ca_file``, the test CA's file, the only CA the server is given: no
``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` in its environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import tes

from tests.integration.conftest import ServerFactory
from tests.integration.server import LwrServer
from tests.integration.tes_support import SERVICE_ADMIN, HttpStore, run_task, service_server
from tests.integration.test_tes_users import MANAGERS, task
from tests.notify_servers import ForwardProxy, server_tls, signed_by_test_ca

pytestmark = pytest.mark.integration

ADMIN = SERVICE_ADMIN
USER, PASSWORD = "tes@site", "s3cret!pw"
USERINFO = "tes%%40site:s3cret%%21pw"  # percent-encoded, each '%' doubled for the ini file
DEAD_END = "http://127.0.0.1:9"


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The test CA, and its certificate for 127.0.0.1 (the stores' and an https proxy's)."""
    return signed_by_test_ca(tmp_path, "127.0.0.1")


@pytest.fixture
def stores(
    tmp_path: Path, certificates: tuple[Path, Path, Path]
) -> Iterator[tuple[HttpStore, HttpStore, Path]]:
    """A plain http store and an https one (the test CA's certificate), both on 127.0.0.1."""
    ca, certificate, key = certificates
    for name in ("plain", "secure"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.txt").write_text(f"{name} data\n")
    secure = HttpStore(tmp_path / "secure")
    secure.server.socket = server_tls(certificate, key).wrap_socket(
        secure.server.socket, server_side=True
    )
    with HttpStore(tmp_path / "plain") as plain, secure:
        yield plain, secure, ca


@pytest.fixture(params=["http", "https"])
def proxy(
    request: pytest.FixtureRequest, certificates: tuple[Path, Path, Path]
) -> Iterator[ForwardProxy]:
    """The proxy, reached over plain TCP or over TLS (an ``https://`` proxy URL)."""
    tls = server_tls(*certificates[1:]) if request.param == "https" else None
    with ForwardProxy(credentials=(USER, PASSWORD), tls=tls) as running:
        yield running


def _server(factory: ServerFactory, ca: Path, **options: str) -> tuple[LwrServer, str]:
    """A server with one service user, alice (her token is returned), trusting the test CA by
    ``tes_ca_file``; the environment's proxy variables lead nowhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        env[name] = DEAD_END
    return service_server(factory, MANAGERS, env, tes_ca_file=str(ca), **options)


def _full(server: LwrServer, token: str, task_id: str) -> str:
    """The task as its owner reads it (FULL view), as text."""
    url = f"{server.url.rstrip('/')}/ga4gh/tes/v1/tasks/{task_id}?view=FULL"
    return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).text


def test_a_users_task_moves_its_files_through_the_proxy(
    lwr_server_factory: ServerFactory,
    stores: tuple[HttpStore, HttpStore, Path],
    proxy: ForwardProxy,
) -> None:
    plain, secure, ca = stores
    server, alice = _server(lwr_server_factory, ca, tes_http_proxy=proxy.url_with(USERINFO),
                            tes_user_allowed_networks="127.0.0.1/32")  # fmt: skip
    http_in = f"http://localhost:{plain.server.server_port}/data.txt"
    https_in = f"https://127.0.0.1:{secure.server.server_port}/data.txt"
    out = f"http://127.0.0.1:{plain.server.server_port}/out.txt"
    inputs = [tes.Input(path="/in/a.txt", url=http_in), tes.Input(path="/in/b.txt", url=https_in)]
    made = task("cat /in/a.txt /in/b.txt > /out/x", inputs=inputs,
                outputs=[tes.Output(path="/out/x", url=out)])  # fmt: skip
    done = run_task(server, alice, made)
    assert done.state == "COMPLETE", done
    assert (plain.root / "out.txt").read_text() == "plain data\nsecure data\n"
    assert proxy.requests == [
        ("GET", http_in),
        ("CONNECT", f"127.0.0.1:{secure.server.server_port}"),
        ("PUT", out),
    ]
    assert proxy.authorizations == [f"{USER}:{PASSWORD}"] * 3


def test_targets_are_judged_before_the_proxy_and_the_admins_go_through_it(
    lwr_server_factory: ServerFactory,
    stores: tuple[HttpStore, HttpStore, Path],
    proxy: ForwardProxy,
) -> None:
    """No allowed network: alice's name for loopback is refused by the server itself, the
    proxy (which could reach it) never asked; the admin token's task is not judged, and
    reaches the same file through the proxy."""
    plain, _, ca = stores
    server, alice = _server(lwr_server_factory, ca, tes_http_proxy=proxy.url_with(USERINFO))
    url = f"http://localhost:{plain.server.server_port}/data.txt"
    made = task("cat /in/a.txt", inputs=[tes.Input(path="/in/a.txt", url=url)])
    refused = run_task(server, alice, made)
    assert refused.state == "SYSTEM_ERROR", refused
    said = "\n".join(refused.logs[0].system_logs)
    assert "resolves to an internal address (loopback)" in said, said
    assert proxy.requests == []
    assert run_task(server, ADMIN, made).state == "COMPLETE"
    assert proxy.requests == [("GET", url)]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_refused_credentials_fail_the_task_saying_why_and_show_nowhere(
    scheme: str,
    lwr_server_factory: ServerFactory,
    stores: tuple[HttpStore, HttpStore, Path],
    proxy: ForwardProxy,
) -> None:
    plain, secure, ca = stores
    wrong = proxy.url_with("tes%%40site:Wr0ng-s3cret")
    server, alice = _server(lwr_server_factory, ca, tes_http_proxy=wrong,
                            tes_user_allowed_networks="127.0.0.1/32")  # fmt: skip
    store = plain if scheme == "http" else secure
    url = f"{scheme}://127.0.0.1:{store.server.server_port}/data.txt"
    done = run_task(server, alice, task("true", inputs=[tes.Input(path="/in/a.txt", url=url)]))
    assert done.state == "SYSTEM_ERROR", done
    said = "\n".join(done.logs[0].system_logs)
    assert "asked for credentials" in said and "407" in said, said
    assert len(proxy.requests) == 1  # not retried: credentials do not heal
    for text in (said, _full(server, alice, str(done.id)), server.log()):
        assert "s3cret" not in text and "tes@site" not in text and "tes%40site" not in text
