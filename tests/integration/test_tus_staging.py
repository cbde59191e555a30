"""``remote_transfer_tus`` with Galaxy's own client against Galaxy 26.1's tus server.

The job files API of :mod:`tests.integration.tus_endpoint` mounts ``tuspyserver`` exactly where
Galaxy 26.1 does and reads the POST that follows an upload as Galaxy does (``session_id``). A
proxy between LWR and it breaks the link once in the middle of an output, and the upload must
finish with the right bytes, having sent again only what was lost.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ServerFactory, run_check
from tests.integration.files_endpoint import final_status
from tests.integration.server import free_port
from tests.integration.tus_endpoint import CuttingProxy, TusFilesEndpoint

pytestmark = pytest.mark.integration

ACTION = "remote_transfer_tus"
MIB = 1024 * 1024


def _server(factory: ServerFactory) -> Any:
    return factory(
        app_options={"staging_retries": "1", "staging_retry_delay": "0.1", "staging_timeout": "10"}
    )


def test_full_scenario(
    lwr_server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Galaxy's whole check: inputs fetched by GET, every output uploaded by tus then POSTed."""
    client_root = tmp_path / "client"
    client_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(client_root))
    server = _server(lwr_server_factory)
    with TusFilesEndpoint(tmp_path / "uploads") as endpoint:
        run_check(server.url, default_file_action=ACTION, files_endpoint=endpoint.files_url())
    posted = [path for path, _ in endpoint.posted]
    assert any(p.endswith("dataset_4.dat") for p in posted), posted  # an output dataset
    assert any(p.endswith("galaxy.json") for p in posted), posted  # a working directory file
    assert "by tus" in server.log() and "finished complete" in server.log()
    leftovers = [p for p in (tmp_path / "uploads").iterdir() if p.is_file()]
    assert all(p.name.endswith(".info") for p in leftovers), leftovers  # every upload moved


def _submit(url: str, files_endpoint: str, work: Path, job_id: str, size: int) -> Any:
    """A job whose output is a copy of its ``size``-byte input (none when ``size`` is 0)."""
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.staging import up
    from pulsar.client.staging.inputs import CLIENT_INPUT_PATH_TYPES, ClientInput, ClientInputs
    from pulsar.client.staging.models import ClientJobDescription, ClientOutputs

    working = work / "working"
    working.mkdir()
    source, output = work / "dataset_5.dat", work / "dataset_6.dat"
    inputs = []
    if size:
        source.write_bytes(os.urandom(size))
        inputs.append(ClientInput(str(source), CLIENT_INPUT_PATH_TYPES.INPUT_PATH))
        command = f"cp {source} {output}"
    else:
        command = f"echo made here > {output}"
    client = build_client_manager().get_client(
        {"url": url, "default_file_action": ACTION, "files_endpoint": files_endpoint}, job_id
    )
    description = ClientJobDescription(
        command_line=command,
        client_inputs=ClientInputs(inputs),
        client_outputs=ClientOutputs(working_directory=str(working), output_files=[str(output)]),
        working_directory=str(working),
    )
    up.submit_job(client, description)
    return client, source, output


def test_upload_resumes_after_the_link_breaks(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    size = 8 * MIB
    server = _server(lwr_server_factory)
    with (
        TusFilesEndpoint(tmp_path / "uploads") as endpoint,
        CuttingProxy(endpoint.port, cut_after=6 * MIB) as proxy,
    ):
        client, source, output = _submit(
            server.url, endpoint.files_url(proxy.port), tmp_path, "tus-resume", size
        )
        status = final_status(client)
    assert status["status"] == "complete", status
    assert proxy.cuts == 1
    assert output.read_bytes() == source.read_bytes()
    resent = proxy.upstream_bytes - size  # requests' headers and whatever travelled twice
    assert resent < size // 4, f"{resent} bytes sent again for a {size}-byte file"
    resumed = re.search(r"resumes at byte (\d+) of (\d+)", server.log())
    assert resumed is not None and int(resumed.group(1)) > 4 * MIB, server.log()


def test_tus_server_down_fails_the_job_with_the_cause(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = _server(lwr_server_factory)
    nobody = f"http://127.0.0.1:{free_port()}/api/jobs/1/files?job_key=k"
    client, _, output = _submit(server.url, nobody, tmp_path, "tus-down", 0)
    status = final_status(client, timeout=60)
    assert status["status"] == "failed", status
    reason = status["reason"]
    assert "staging outputs failed" in reason and "dataset_6.dat" in reason, reason
    assert "job_files/resumable_upload" in reason and "Connection refused" in reason, reason
    assert "after 2 attempt(s)" in reason and "job_key=[redacted]" in reason, reason
    assert not output.exists()
