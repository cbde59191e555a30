"""The CAs https transfers are verified by: ``tls`` (``tes_ca_file``, lwr.staging.transfer).

Real sockets: an https store (:class:`tests.integration.tes_support.HttpStore`) whose
certificate a test CA signed. ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are unset, so the system's CAs
do not know the test CA: only the context built from the CA file trusts it. A certificate not
trusted fails at once, without the retries that a connection error gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr.config import load_app_config
from lwr.egress import EgressPolicy, Target, parse_networks
from lwr.errors import ConfigurationError, StagingError
from lwr.staging.transfer import RetryPolicy, fetch, push, tls_context
from tests.integration.tes_support import HttpStore
from tests.notify_servers import server_tls, signed_by_test_ca

NAME = "files.lwr.test"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HttpStore, Path]]:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    (tmp_path / "ca").mkdir()
    ca, certificate, key = signed_by_test_ca(tmp_path / "ca", NAME, "127.0.0.1")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "in.txt").write_text("data\n")
    running = HttpStore(tmp_path / "store")
    running.server.socket = server_tls(certificate, key).wrap_socket(
        running.server.socket, server_side=True
    )
    with running:
        yield running, ca


def _pinned() -> EgressPolicy:
    def resolve(host: str, port: int) -> list[Target]:
        return [(2, ("127.0.0.1", port))]

    return EgressPolicy(parse_networks("127.0.0.1/32"), resolve)


def test_the_ca_file_verifies_direct_and_pinned_transfers(
    store: tuple[HttpStore, Path], tmp_path: Path
) -> None:
    running, ca = store
    tls = tls_context(ca)
    direct = f"https://127.0.0.1:{running.server.server_port}"
    assert fetch(f"{direct}/in.txt", tmp_path / "a", tls=tls) == 5
    named = f"https://{NAME}:{running.server.server_port}"  # pinned: the name checked by TLS
    assert fetch(f"{named}/in.txt", tmp_path / "b", egress=_pinned(), tls=tls) == 5
    assert push(f"{named}/out.txt", tmp_path / "b", method="PUT", egress=_pinned(), tls=tls) == 5
    assert (running.root / "out.txt").read_text() == "data\n"


def test_an_untrusted_certificate_fails_at_once_saying_so(
    store: tuple[HttpStore, Path], tmp_path: Path
) -> None:
    running, _ = store
    slept: list[float] = []
    url = f"https://127.0.0.1:{running.server.server_port}/in.txt"
    with pytest.raises(StagingError, match="certificate verify failed") as failed:
        fetch(url, tmp_path / "a", RetryPolicy(retries=3, delay=0.01), sleep=slept.append)
    assert slept == []  # not retried
    assert "unable to get local issuer certificate" in failed.value.message
    assert not (tmp_path / "a").exists()


def test_the_option_is_read_relative_to_here_and_checked_at_start(tmp_path: Path) -> None:
    signed_by_test_ca(tmp_path, "127.0.0.1")
    config = load_app_config({"tes_ca_file": "ca.pem"}, here=tmp_path)
    assert config.tes_ca_file == (tmp_path / "ca.pem").resolve()
    assert load_app_config({}, here=tmp_path).tes_ca_file is None
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    (tmp_path / "folder.pem").mkdir()
    for name, says in [
        ("missing.pem", "cannot be read"),
        ("junk.pem", "has no usable CA certificate"),
        ("folder.pem", "cannot be read: .*Is a directory"),
        ("server-key.pem", "has no usable CA certificate"),
    ]:
        with pytest.raises(ConfigurationError, match=f"tes_ca_file .*{says}"):
            load_app_config({"tes_ca_file": name}, here=tmp_path)
