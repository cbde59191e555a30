"""Server-side staging with Galaxy's own client: the server fetches inputs and sends outputs.

A :class:`~tests.integration.files_endpoint.FilesEndpoint` stands in for Galaxy's job files API.
Galaxy's full scenario (``pulsar.client.test.check``) then runs with ``remote_transfer`` and with a
rule file using every action, and every output the check asserts on must have reached the client's
side by the route its rule chose. Failures must end the job ``failed`` naming the file.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from lwr.staging.rules import load_rules_file
from tests.integration.conftest import ServerFactory, run_check
from tests.integration.files_endpoint import FilesEndpoint, final_status

pytestmark = pytest.mark.integration


def test_remote_transfer_full_scenario(lwr_server_factory: ServerFactory) -> None:
    server = lwr_server_factory()
    with FilesEndpoint(job_key="galaxy-job-key-123") as endpoint:
        run_check(server.url, default_file_action="remote_transfer", files_endpoint=endpoint.url)
    kinds = endpoint.kinds()
    assert {("GET", "input"), ("GET", "tool"), ("GET", "unstructured")} <= kinds, kinds
    assert {("POST", "output"), ("POST", "output_workdir"), ("POST", "output_metadata")} <= kinds
    log = server.log()
    assert "postprocessing" in log and "finished complete" in log
    staging_lines = [line for line in log.splitlines() if "[lwr.staging" in line]
    assert any("fetched" in line for line in staging_lines)
    # the files endpoint's key is redacted from staging's own lines (the access log's line of the
    # submit request still shows it inside remote_staging: that is lwr.web.dispatch's redaction)
    assert not any("galaxy-job-key-123" in line for line in staging_lines)


def test_remote_transfer_with_jobs_directory(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Message-queue style: the client sets the job up locally and sends config files inline."""
    staging = tmp_path / "staging"
    server = lwr_server_factory(app_options={"staging_directory": str(staging)})
    with FilesEndpoint() as endpoint:
        run_check(
            server.url,
            default_file_action="remote_transfer",
            files_endpoint=endpoint.url,
            jobs_directory=str(staging),  # Pulsar's layout: <staging>/<job_id>
        )
    assert ("GET", "input") in endpoint.kinds()
    assert "set up (tool client_test" in server.log()


def test_rule_file_with_every_action(
    lwr_server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A YAML rule file: glob → remote_copy, regex with depth, rewrite, copy, none, and the rest
    remote_transfer. The check's own assertions prove each file arrived where it belongs."""
    from pulsar.client.test import check

    client_root = tmp_path / "client"
    client_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(client_root))
    written: list[Path] = []

    def write_rules(temp_directory: str, data: dict[str, Any], name: str = "") -> str:
        t = temp_directory
        rules = [
            # the input dataset and its extra files: the server copies them from the client's disk
            {
                "path": f"{t}/dataset_0*",
                "match_type": "glob",
                "path_types": "input",
                "action": "remote_copy",
            },
            # the input metadata file: the client copies it into the job itself
            {"path": f"{t}/metadata", "path_types": "input", "action": "copy"},
            # index files: found by a regex, their whole directory two levels up transferred
            {
                "path": re.escape(f"{t}/idx/bwa/") + r"human\.fa",
                "match_type": "regex",
                "path_types": "unstructured",
                "depth": 2,
                "action": "remote_transfer",
            },
            # outputs, one action each
            {"path": f"{t}/dataset_1.dat", "path_types": "output", "action": "none"},
            {"path": f"{t}/dataset_2.dat", "path_types": "output", "action": "remote_copy"},
            {"path": f"{t}/dataset_3.dat", "path_types": "output", "action": "copy"},
            *data["paths"],  # the check's own: the rewrite rule for the shared directory
        ]
        path = Path(temp_directory) / "file_actions.yaml"
        path.write_text(yaml.safe_dump({"paths": rules}))
        written.append(path)
        return str(path)

    monkeypatch.setattr(check, "write_config", write_rules)
    server = lwr_server_factory(app_options={"remote_copy_allowed_paths": str(client_root)})
    with FilesEndpoint() as endpoint:
        run_check(
            server.url,
            default_file_action="remote_transfer",
            files_endpoint=endpoint.url,
            test_rewrite_action=True,
            cleanup=False,
        )
    rules = load_rules_file(written[0])  # our loader reads the same file the client read
    actions = {rule.action.action_type for rule in rules.rules}
    assert actions == {"remote_copy", "copy", "remote_transfer", "none", "rewrite"}
    served = endpoint.served("GET") + endpoint.served("POST")
    temp = written[0].parent
    assert not any(p.startswith(f"{temp}/dataset_0") for p in served)  # remote_copy, not HTTP
    assert not any(p.startswith(f"{temp}/metadata/") for p in served)  # copied by the client
    assert f"{temp}/dataset_2.dat" not in served  # remote_copy back
    assert f"{temp}/dataset_3.dat" not in served  # copied back by the client
    assert f"{temp}/dataset_4.dat" in served  # the default: remote_transfer
    assert f"{temp}/idx/seq/human_full_seqs" in served  # depth 2 took the sibling directory
    log = server.log()
    assert f"copied {temp}/dataset_0.dat" in log


def test_file_cache_with_the_caching_client(lwr_server_factory: ServerFactory, tmp_path: Path):
    server = lwr_server_factory(app_options={"file_cache_dir": str(tmp_path / "cache")})
    run_check(server.url, cache=True)
    cached = list((tmp_path / "cache" / "files").iterdir())
    assert cached, "the caching client inserted nothing"


# -- failures ---------------------------------------------------------------------------------


def _submit(url: str, endpoint: FilesEndpoint, work: Path, job_id: str) -> Any:
    """Submit a one-input, one-output job with remote_transfer through Galaxy's client API."""
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.staging import up
    from pulsar.client.staging.inputs import CLIENT_INPUT_PATH_TYPES, ClientInput, ClientInputs
    from pulsar.client.staging.models import ClientJobDescription, ClientOutputs

    working = work / "working"
    working.mkdir()
    source, output = work / "dataset_5.dat", work / "dataset_6.dat"
    source.write_text("some input\n")
    manager = build_client_manager()
    client = manager.get_client(
        {"url": url, "default_file_action": "remote_transfer", "files_endpoint": endpoint.url},
        job_id,
    )
    description = ClientJobDescription(
        command_line=f"cp {source} {output}",
        client_inputs=ClientInputs([ClientInput(str(source), CLIENT_INPUT_PATH_TYPES.INPUT_PATH)]),
        client_outputs=ClientOutputs(working_directory=str(working), output_files=[str(output)]),
        working_directory=str(working),
    )
    up.submit_job(client, description)
    return client, source, output


def test_input_failing_then_dropped_fails_the_job(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory(app_options={"staging_retries": "1", "staging_retry_delay": "0.1"})
    with FilesEndpoint() as endpoint:
        endpoint.fail(tmp_path / "dataset_5.dat", 500, "drop")
        client, source, _ = _submit(server.url, endpoint, tmp_path, "fail-in")
        status = final_status(client)
    assert status["status"] == "failed"
    assert str(source) in status["reason"] and "after 2 attempt(s)" in status["reason"]
    assert "staging inputs failed" in status["stderr"]


def test_input_retried_after_a_500_succeeds(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory(app_options={"staging_retry_delay": "0.1"})
    with FilesEndpoint() as endpoint:
        endpoint.fail(tmp_path / "dataset_5.dat", 503, "short")
        client, _, output = _submit(server.url, endpoint, tmp_path, "retry-in")
        status = final_status(client)
    assert status["status"] == "complete", status
    assert output.read_text() == "some input\n"
    assert "retry 2" in server.log()


def test_refused_output_fails_the_job_naming_it(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = lwr_server_factory(app_options={"staging_retry_delay": "0.1"})
    with FilesEndpoint() as endpoint:
        endpoint.fail(tmp_path / "dataset_6.dat", 403)
        client, _, output = _submit(server.url, endpoint, tmp_path, "fail-out")
        status = final_status(client)
    assert status["status"] == "failed"
    assert "staging outputs failed" in status["reason"]
    assert "dataset_6.dat" in status["reason"] and "HTTP 403" in status["reason"]
    assert not output.exists()
