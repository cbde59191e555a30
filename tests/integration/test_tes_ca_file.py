"""``tes_ca_file``: the CAs a TES task's https transfers are verified by, named in server.ini.

A site whose data servers carry certificates of its own CA names that CA's PEM bundle; the
server, started as a user starts it, fetches an https input and PUTs an https output verified by
it, for the admin token's task (a direct connection) and a service user's (a connection pinned to
a judged address) alike. Without the option the system's CAs, which do not know the test CA,
refuse the certificate: the task ends ``SYSTEM_ERROR`` with "certificate verify failed" in its
system logs, not a traceback. A file that is no CA bundle stops the start, naming the option.
``py-tes`` is the client; the https store is a real server on loopback with a certificate the
test CA signed (tests.notify_servers). ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are removed from
the server's environment, so only the option can make the test CA trusted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import tes

from tests.integration.conftest import ServerFactory
from tests.integration.server import LwrServer
from tests.integration.tes_support import SERVICE_ADMIN, HttpStore, run_task, service_server
from tests.integration.test_tes_users import MANAGERS, task
from tests.notify_servers import server_tls, signed_by_test_ca

pytestmark = pytest.mark.integration

ADMIN = SERVICE_ADMIN


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[tuple[HttpStore, Path]]:
    """An https store on 127.0.0.1 (its certificate signed by the test CA), and the CA's file."""
    ca, certificate, key = signed_by_test_ca(tmp_path, "127.0.0.1")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "data.txt").write_text("secure data\n")
    store = HttpStore(tmp_path / "store")
    store.server.socket = server_tls(certificate, key).wrap_socket(
        store.server.socket, server_side=True
    )
    with store:
        yield store, ca


def _server(factory: ServerFactory, **options: str) -> tuple[LwrServer, str]:
    """A server with one service user, alice (her token is returned); no CA from the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    return service_server(factory, MANAGERS, env, **options)


def _round_trip(store: HttpStore, name: str) -> tes.Task:
    port = store.server.server_port
    return task(
        "cat /in/a.txt > /out/x",
        inputs=[tes.Input(path="/in/a.txt", url=f"https://127.0.0.1:{port}/data.txt")],
        outputs=[tes.Output(path="/out/x", url=f"https://127.0.0.1:{port}/{name}")],
    )


def test_https_inputs_and_outputs_are_verified_by_the_option(
    lwr_server_factory: ServerFactory, secure: tuple[HttpStore, Path]
) -> None:
    store, ca = secure
    (store.root.parent / "conf").mkdir()
    (store.root.parent / "conf" / "site-ca.pem").write_bytes(ca.read_bytes())
    server, alice = _server(lwr_server_factory, tes_ca_file="../conf/site-ca.pem",
                            tes_user_allowed_networks="127.0.0.1/32")  # fmt: skip
    for token, name in ((ADMIN, "admin.txt"), (alice, "alice.txt")):
        done = run_task(server, token, _round_trip(store, name))
        assert done.state == "COMPLETE", done
        assert (store.root / name).read_text() == "secure data\n"
    assert store.puts == ["/admin.txt", "/alice.txt"]


def test_without_the_option_the_task_fails_saying_the_certificate_is_not_trusted(
    lwr_server_factory: ServerFactory, secure: tuple[HttpStore, Path]
) -> None:
    store, _ = secure
    server, alice = _server(lwr_server_factory, tes_user_allowed_networks="127.0.0.1/32")
    for token, name in ((ADMIN, "admin.txt"), (alice, "alice.txt")):
        done = run_task(server, token, _round_trip(store, name))
        assert done.state == "SYSTEM_ERROR", done
        said = "\n".join(done.logs[0].system_logs)
        assert "input 0 (/in/a.txt)" in said and "certificate verify failed" in said, said
        assert "Traceback" not in said and "attempt(s)" not in said  # final at once: no retry
    assert store.puts == []
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot be read"),
        ("not a certificate\n", "has no usable CA certificate (PEM expected)"),
    ],
)
def test_a_file_that_is_no_ca_bundle_stops_the_start_naming_the_option(
    lwr_server_factory: ServerFactory, content: str | None, says: str
) -> None:
    server = lwr_server_factory(app_options={"tes_ca_file": "ca.pem"}, start=False)
    if content is not None:
        (server.directory / "ca.pem").write_text(content)
    with pytest.raises(RuntimeError, match="LWR exited") as failed:
        server.start()
    assert f"tes_ca_file '{server.directory.resolve() / 'ca.pem'}' {says}" in str(failed.value)
