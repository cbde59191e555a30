"""Where a service user's TES task may make the server connect: lwr.egress wired into lwr.tes.

Up front, internal address literals in any spelling are refused (403 naming the option); at the
transfer, a name is resolved once, judged, and connected to as judged (its Host header kept), a
refusal failing at once without retries; the admin token's tasks are not held.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lwr.config import load_app_config
from lwr.egress import EgressPolicy, Target, parse_networks
from lwr.errors import ConfigurationError, StagingError
from lwr.staging.remote import RemoteStager
from lwr.staging.transfer import RetryPolicy, fetch, push
from lwr.tes import policy
from lwr.tes.staging import LAUNCH_KEY, TesStaging
from tests.unit.tes.test_policy import PLANS, QUOTA, refusals, task

INTERNAL = [
    "http://127.0.0.1:8080/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://2130706433/x",
    "http://0x7f.1/x",
    "https://10.0.0.1/x",
    "http://192.168.1.1/x",
    "http://0.0.0.0/x",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_literals_are_refused_to_users_up_front(url: str) -> None:
    for refused in refusals(url):
        assert refused.status == 403
        assert refused.to_dict()["setting"] == "tes_user_allowed_networks"
        assert "internal address" in refused.message


def test_public_literals_and_names_pass_and_an_allowed_network_opens() -> None:
    for url in ("http://93.184.216.34/x", "https://example.org/x", "http://localhost:1/x"):
        policy.check_storage(task(inputs=[{"path": "/d/x", "url": url}]), QUOTA)
    opened = policy.Quota("alice", QUOTA.plan, PLANS, EgressPolicy(parse_networks("10.0.0.0/8")))
    policy.check_storage(task(inputs=[{"path": "/d/x", "url": "http://10.2.3.4/x"}]), opened)
    with pytest.raises(policy.TesRefusedError):
        policy.check_storage(task(inputs=[{"path": "/d/x", "url": "http://127.0.0.1/"}]), opened)


def test_the_option_is_parsed_and_a_bad_entry_named(tmp_path: Path) -> None:
    config = load_app_config({"tes_user_allowed_networks": "10.9.0.0/16, ::1"}, here=tmp_path)
    assert [str(n) for n in config.tes_user_allowed_networks] == ["10.9.0.0/16", "::1/128"]
    assert load_app_config({}, here=tmp_path).tes_user_allowed_networks == ()
    with pytest.raises(ConfigurationError, match="tes_user_allowed_networks"):
        load_app_config({"tes_user_allowed_networks": "10.0.0.1/8"}, here=tmp_path)


def test_only_service_users_tasks_are_held() -> None:
    egress = EgressPolicy(parse_networks("10.0.0.0/8"))
    staging = TesStaging(RemoteStager(), None, egress)
    assert staging._egress({LAUNCH_KEY: {"owner": "user:alice"}}) is egress
    assert staging._egress({LAUNCH_KEY: {"owner": "token:abc"}}) is None


class _Store:
    """A loopback HTTP server recording the Host header of every request."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                store.hosts.append(self.headers.get("Host", ""))
                if self.path == "/moved":  # a redirect to a place the policy never judged
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_PUT(self) -> None:
                store.hosts.append(self.headers.get("Host", ""))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def store() -> Iterator[_Store]:
    found = _Store()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _resolving(address: str) -> Any:
    """A resolver answering every name with ``address`` (a rebound DNS answer, say)."""

    def resolve(host: str, port: int) -> list[Target]:
        return [(2, (address, port))]

    return resolve


def test_a_name_resolving_inside_is_refused_at_the_transfer(store: _Store, tmp_path: Path) -> None:
    rebound = EgressPolicy(resolver=_resolving("127.0.0.1"))
    waits: list[float] = []
    url = f"http://files.example.org:{store.port}/x"
    with pytest.raises(StagingError, match="resolves to an internal address") as refused:
        fetch(url, tmp_path / "x", RetryPolicy(retries=3), sleep=waits.append, egress=rebound)
    assert "tes_user_allowed_networks" in refused.value.message
    source = tmp_path / "out"
    source.write_bytes(b"data")
    with pytest.raises(StagingError, match="internal address"):
        push(url, source, RetryPolicy(retries=3), "PUT", waits.append, egress=rebound)
    assert store.hosts == [] and waits == []  # nothing reached it, nothing retried


def test_an_allowed_name_is_connected_to_as_judged(store: _Store, tmp_path: Path) -> None:
    allowed = EgressPolicy(parse_networks("127.0.0.1/32"), _resolving("127.0.0.1"))
    url = f"http://files.example.org:{store.port}/x"
    assert fetch(url, tmp_path / "x", egress=allowed) == 2
    source = tmp_path / "out"
    source.write_bytes(b"data")
    assert push(url, source, method="PUT", egress=allowed) == 4
    assert store.hosts == [f"files.example.org:{store.port}"] * 2  # the URL's host, kept


def test_a_redirect_is_not_followed(store: _Store, tmp_path: Path) -> None:
    allowed = EgressPolicy(parse_networks("127.0.0.1/32"))
    waits: list[float] = []
    url = f"http://127.0.0.1:{store.port}/moved"
    with pytest.raises(StagingError, match="HTTP 302"):
        fetch(url, tmp_path / "x", RetryPolicy(retries=3), sleep=waits.append, egress=allowed)
    assert len(store.hosts) == 1 and waits == [] and not (tmp_path / "x").exists()
