"""HTTP(S) transfers through an operator's proxy (``tes_http_proxy``): lwr.staging.transfer.

Real sockets: a file store (:class:`tests.integration.tes_support.HttpStore`, over TLS with a
test CA's certificate for the https cases) and a forwarding proxy
(:class:`tests.notify_servers.ForwardProxy`) asking for credentials, itself over TLS for an
https proxy. The server verifies https with the system's CAs: the test points OpenSSL's
``SSL_CERT_FILE`` at the test CA, as a site would install its CA system-wide. Files are a few
MiB so the download and upload paths that bypass Python on plain sockets (splice, sendfile)
would be taken if the code mistook a tunnel's TLS for plain TCP; the bytes are compared.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.egress import EgressPolicy, Target, parse_networks
from lwr.errors import StagingError
from lwr.proxy import Proxy
from lwr.staging.transfer import RetryPolicy, fetch, push
from tests.integration.tes_support import HttpStore
from tests.notify_servers import ForwardProxy, server_tls, signed_by_test_ca

NAME = "files.lwr.test"
USER, PASSWORD = "tes", "s3cret:pw"
USERINFO = "tes:s3cret%3Apw"


def _resolving(address: str) -> EgressPolicy:
    def resolve(host: str, port: int) -> list[Target]:
        return [(2, (address, port))]

    return EgressPolicy(parse_networks("127.0.0.1/32"), resolve)


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    (tmp_path / "ca").mkdir()
    made = signed_by_test_ca(tmp_path / "ca", NAME, "127.0.0.1")
    monkeypatch.setenv("SSL_CERT_FILE", str(made[0]))  # the "system" CAs of this test
    return made


def _store(root: Path, ca: tuple[Path, Path, Path] | None) -> HttpStore:
    root.mkdir()
    store = HttpStore(root)
    if ca is not None:
        store.server.socket = server_tls(*ca[1:]).wrap_socket(store.server.socket, server_side=True)
    return store


@pytest.fixture
def payload(tmp_path: Path) -> bytes:
    return os.urandom(3 * 1024 * 1024 + 17)


@pytest.mark.parametrize(("target_tls", "proxy_tls"), [(False, False), (True, False), (True, True),
                                                       (False, True)])  # fmt: skip
def test_fetch_and_put_through_an_authenticating_proxy(
    target_tls: bool,
    proxy_tls: bool,
    ca: tuple[Path, Path, Path],
    tmp_path: Path,
    payload: bytes,
) -> None:
    scheme = "https" if target_tls else "http"
    tls = server_tls(*ca[1:]) if proxy_tls else None
    with (
        _store(tmp_path / "store", ca if target_tls else None) as store,
        ForwardProxy({NAME: "127.0.0.1"}, credentials=(USER, PASSWORD), tls=tls) as proxy,
    ):
        (store.root / "in.bin").write_bytes(payload)
        base = f"{scheme}://{NAME}:{store.server.server_port}"
        through = Proxy.parse(proxy.url_with(USERINFO))
        egress = _resolving("127.0.0.1")
        assert fetch(f"{base}/in.bin", tmp_path / "got", egress=egress, proxy=through) == len(
            payload
        )
        assert (tmp_path / "got").read_bytes() == payload
        assert push(f"{base}/out.bin", tmp_path / "got", method="PUT", proxy=through) == len(
            payload
        )
        assert (store.root / "out.bin").read_bytes() == payload
    if target_tls:
        authority = f"{NAME}:{store.server.server_port}"
        assert proxy.requests == [("CONNECT", authority)] * 2
    else:
        assert proxy.requests == [("GET", f"{base}/in.bin"), ("PUT", f"{base}/out.bin")]
    assert proxy.authorizations == [f"{USER}:{PASSWORD}"] * 2


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_target_is_judged_before_the_proxy_is_asked(
    scheme: str, ca: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """A name the server resolves inside, and a literal, are refused; the proxy (which could
    reach them) hears nothing, and nothing is retried."""
    inside = EgressPolicy(resolver=lambda host, port: [(2, ("127.0.0.1", port))])
    waits: list[float] = []
    with ForwardProxy({NAME: "127.0.0.1"}) as proxy:
        for host in (NAME, "127.0.0.1"):
            url = f"{scheme}://{host}:1234/x"
            with pytest.raises(StagingError, match="internal address"):
                fetch(url, tmp_path / "x", RetryPolicy(3), waits.append, None, inside,
                      Proxy.parse(proxy.url))  # fmt: skip
        assert proxy.requests == [] and waits == []


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("userinfo", [None, "tes:wrong-s3cret"])
def test_a_407_is_final_and_keeps_the_credentials_out(
    scheme: str, userinfo: str | None, ca: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    waits: list[float] = []
    with (
        _store(tmp_path / "store", ca if scheme == "https" else None) as store,
        ForwardProxy({NAME: "127.0.0.1"}, credentials=(USER, PASSWORD)) as proxy,
    ):
        (store.root / "x").write_bytes(b"x")
        through = Proxy.parse(proxy.url if userinfo is None else proxy.url_with(userinfo))
        url = f"{scheme}://{NAME}:{store.server.server_port}/x"
        with pytest.raises(StagingError, match="asked for credentials") as caught:
            fetch(url, tmp_path / "x", RetryPolicy(3), waits.append, None, None, through)
        assert len(proxy.requests) == 1 and waits == []  # not retried: it will not heal
    said = caught.value.message
    assert "s3cret" not in said and "407" in said and str(through) in said, said


def test_a_proxy_that_cannot_connect_is_retried(tmp_path: Path) -> None:
    """A proxy's 502 (its upstream unreachable) may heal: retried as a connection error
    would be, and the message says who answered what."""
    waits: list[float] = []
    with ForwardProxy() as proxy:  # port 9 on loopback: nothing listens there
        url = "https://127.0.0.1:9/x"
        with pytest.raises(StagingError, match=r"after 3 attempt.*answered CONNECT .* 502"):
            fetch(url, tmp_path / "x", RetryPolicy(2, 0), waits.append, None, None,
                  Proxy.parse(proxy.url))  # fmt: skip
    assert len(proxy.requests) == 3 and len(waits) == 2


@pytest.fixture(autouse=True)
def _no_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Were the environment's proxy read, these would go elsewhere: set to a dead end."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    yield
