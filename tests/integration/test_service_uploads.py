"""Service users' uploads against their plan's input limits, and the admin-only staging features.

Split from test_service_users.py; the same server (service_support.py), a fresh one per module
and database. Galaxy's client and plain HTTP (chunked uploads too) talk to it.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration import service_support
from tests.integration.service_support import Service

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

#: the module-scoped server of service_support, one per database, for this module
service = service_support.service


def _inputs(answer: dict[str, Any]) -> list[str]:
    return sorted(p.name for p in Path(answer["inputs_directory"]).iterdir())


def test_oversized_upload_is_refused_before_it_is_stored(service: Service) -> None:
    answer = service.setup_job("alice", "big")
    status, body = service.call(
        "alice", "POST", "jobs/big/files", b"x" * 200_000, name="huge.dat", type="input"
    )
    assert status == 413
    assert body == {
        "error": body["error"],
        "limit": "max_input_size",
        "limit_bytes": 150_000,
        "size": 200_000,
        "plan": "free",
        "allowed_by": "premium",
    }
    assert "max_input_size" in body["error"] and "premium" in body["error"]
    assert _inputs(answer) == []
    status, body = _chunked_upload(service, "alice", "big", "huge.dat", 200_000)
    assert status == 413 and body["limit"] == "max_input_size", body
    assert body["size"] > 150_000
    assert _inputs(answer) == [] and not list(Path(answer["job_directory"]).rglob(".upload-*"))


def test_total_input_limit_counts_the_jobs_files(service: Service) -> None:
    answer = service.setup_job("alice", "total")
    for name in ("a.dat", "b.dat", "a.dat"):  # a.dat again replaces the first, not adds
        status, body = service.call(
            "alice", "POST", "jobs/total/files", b"y" * 100_000, name=name, type="input"
        )
        assert status == 200, body
    status, body = service.call(
        "alice", "POST", "jobs/total/files", b"z" * 100_000, name="c.dat", type="input"
    )
    assert status == 413
    assert (body["limit"], body["limit_bytes"], body["size"]) == (
        "max_total_input",
        250_000,
        100_000,
    )
    assert body["allowed_by"] == "premium"
    assert _inputs(answer) == ["a.dat", "b.dat"]


def test_uploads_at_once_cannot_pass_the_total_together(service: Service) -> None:
    """Eight 100 KB uploads into one job at once, 250 KB allowed: two land, six are refused.

    Each upload sends its headers and half its body, then all wait a moment in the server (so
    without the per-job serialisation every one would be checked against an empty job), then
    the other halves follow.
    """
    from urllib.parse import urlencode

    answer = service.setup_job("alice", "race")
    connections = []
    for n in range(8):
        query = urlencode(
            {"name": f"part{n}", "type": "input", "private_token": service.tokens["alice"]}
        )
        connection = http.client.HTTPConnection("127.0.0.1", service.server.port, timeout=30)
        connection.putrequest("POST", f"/jobs/race/files?{query}")
        connection.putheader("Content-Length", "100000")
        connection.endheaders()
        connection.send(b"r" * 50_000)
        connections.append(connection)
    time.sleep(0.5)  # all eight reach the server; the answer does not depend on this
    for connection in connections:  # every rest first: the one holding the job may be any
        try:
            connection.send(b"r" * 50_000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused already, without reading the rest
    statuses = []
    for connection in connections:
        statuses.append(connection.getresponse().status)
        connection.close()
    assert sorted(statuses) == [200, 200] + [413] * 6
    assert len(_inputs(answer)) == 2
    service.call("alice", "DELETE", "jobs/race")


def test_the_admin_and_premium_are_not_held_to_free_limits(service: Service) -> None:
    for who in ("admin", "pat"):
        service.setup_job(who, "large")
        status, body = service.call(
            who, "POST", "jobs/large/files", b"x" * 400_000, name="large.dat", type="input"
        )
        assert (status, body["size"]) == (200, 400_000)
        service.call(who, "DELETE", "jobs/large")


def test_the_file_cache_is_the_admins(service: Service) -> None:
    """A shared cache would let one user read what another staged: users get 403."""
    service.setup_job("alice", "cached")
    status, body = service.call(
        "alice", "POST", "jobs/cached/files", None, name="a", type="input", cache_token="tok"
    )
    assert status == 403 and "admin" in body["error"]
    token = service.tokens["alice"]
    status = service.server.request("GET", "cache/status", {"path": "/x", "private_token": token})
    assert status[0] == 403
    service.call("alice", "DELETE", "jobs/cached")


def test_server_side_staging_is_the_admins(service: Service) -> None:
    """Staged by the server, inputs would pass the plan's limits: a user uploads them."""
    service.setup_job("alice", "pull")
    remote = {
        "setup": [
            {
                "name": "a.dat",
                "type": "input",
                "action": {"action_type": "remote_transfer", "url": "http://x/a"},
            }
        ]
    }
    status, body = service.call(
        "alice", "POST", "jobs/pull/submit", command_line="true", remote_staging=json.dumps(remote)
    )
    assert status == 403 and "remote_staging" in body["error"]
    assert service.call("alice", "GET", "jobs/pull/status")[1]["status"] == "preprocessing"
    service.call("alice", "DELETE", "jobs/pull")


def _chunked_upload(
    service: Service, who: str, job_id: str, name: str, size: int
) -> tuple[int, Any]:
    """An upload with ``Transfer-Encoding: chunked`` (no Content-Length), 16 KiB a chunk."""
    from urllib.parse import urlencode

    query = urlencode({"name": name, "type": "input", "private_token": service.tokens[who]})
    connection = http.client.HTTPConnection("127.0.0.1", service.server.port, timeout=30)
    chunks = (b"c" * 16384 for _ in range(size // 16384 + 1))
    try:
        connection.request(
            "POST", f"/jobs/{job_id}/files?{query}", body=chunks, encode_chunked=True
        )
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the whole body is sent
    response = connection.getresponse()
    answer = response.status, json.loads(response.read())
    connection.close()
    return answer
