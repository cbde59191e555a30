"""``remote_scp_transfer`` and ``remote_rsync_transfer`` with Galaxy's own client and a real sshd.

The client's "host" is this machine, reached through the test sshd of
``scripts/services/sshd-up.sh``: LWR logs in with the key the client sends, fetches each input
from the client's path and pushes each output back to the client's path. The host key is checked
strictly against the sshd's known_hosts file, as a site should run it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.integration.cli.services import ssh_problem, ssh_settings
from tests.integration.conftest import ServerFactory, run_check
from tests.integration.files_endpoint import final_status

pytestmark = [pytest.mark.integration, pytest.mark.sshd]

SSH_ACTIONS = ("remote_scp_transfer", "remote_rsync_transfer")


@pytest.fixture(scope="module")
def sshd() -> dict[str, str]:
    """The test sshd's settings (HOST, PORT, USER, KEY, KNOWN_HOSTS), once it answers."""
    settings = ssh_settings()
    problem = ssh_problem(settings)
    require_service(problem is None, problem or "")
    assert settings is not None
    return settings


def _server(
    factory: ServerFactory, sshd: dict[str, str], tmpdir: Path | None = None, **extra: str
) -> Any:
    options = {
        "staging_ssh_known_hosts": sshd["KNOWN_HOSTS"],
        "staging_retries": "1",
        "staging_retry_delay": "0.1",
        "staging_timeout": "10",
        **extra,
    }
    env = {**os.environ, "TMPDIR": str(tmpdir)} if tmpdir is not None else None
    return factory(app_options=options, env=env)


@pytest.mark.parametrize("action", SSH_ACTIONS)
def test_full_scenario_with_per_rule_ssh_settings(
    action: str,
    sshd: dict[str, str],
    lwr_server_factory: ServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Galaxy's whole check (inputs, tool files, index directory, every kind of output) over ssh.

    The check points its ssh settings at port 22; the rules name the test sshd instead, which
    also proves a rule's own ``ssh_*`` settings win over the destination's.
    """
    from pulsar.client.test import check

    client_root = tmp_path / "client"
    client_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(client_root))
    monkeypatch.setenv("PULSAR_TEST_KEY", sshd["KEY"])
    own = {"ssh_host": sshd["HOST"], "ssh_port": int(sshd["PORT"]), "ssh_user": sshd["USER"]}
    original = check.write_config

    def write_rules(temp_directory: str, data: dict[str, Any], name: str = "") -> str:
        rules = [
            {**rule, **own} if rule.get("action") == action else rule for rule in data["paths"]
        ]
        rules.append({"path_types": "*defaults*", "action": action, **own})
        return original(temp_directory, {"paths": rules})

    monkeypatch.setattr(check, "write_config", write_rules)
    server_tmp = tmp_path / "server-tmp"  # where the server writes the keys it is sent
    server_tmp.mkdir()
    server = _server(lwr_server_factory, sshd, tmpdir=server_tmp)
    run_check(server.url, default_file_action=action)
    log = server.log()
    program = "scp" if action == "remote_scp_transfer" else "rsync"
    assert f"over {program}" in log
    assert "postprocessing" in log and "finished complete" in log
    assert "BEGIN OPENSSH PRIVATE KEY" not in log  # the key sent with the job is never logged
    assert not list(server_tmp.iterdir())  # and removed after each use


def _submit(url: str, action: str, work: Path, job_id: str, ssh: dict[str, Any]) -> Any:
    """A one-input, one-output job whose destination names the ssh settings (no rule file)."""
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.staging import up
    from pulsar.client.staging.inputs import CLIENT_INPUT_PATH_TYPES, ClientInput, ClientInputs
    from pulsar.client.staging.models import ClientJobDescription, ClientOutputs

    working = work / "working"
    working.mkdir()
    source, output = work / "dataset_5.dat", work / "outputs" / "dataset_6.dat"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    client = build_client_manager().get_client(
        {"url": url, "default_file_action": action, **ssh}, job_id
    )
    description = ClientJobDescription(
        command_line=f"cp {source} {output}",  # rewritten to the job's own copies
        client_inputs=ClientInputs([ClientInput(str(source), CLIENT_INPUT_PATH_TYPES.INPUT_PATH)]),
        client_outputs=ClientOutputs(working_directory=str(working), output_files=[str(output)]),
        working_directory=str(working),
    )
    up.submit_job(client, description)
    return client, source, output


def _destination(sshd: dict[str, str], **override: Any) -> dict[str, Any]:
    return {
        "ssh_key": Path(sshd["KEY"]).read_text(),
        "ssh_user": sshd["USER"],
        "ssh_host": sshd["HOST"],
        "ssh_port": int(sshd["PORT"]),
        **override,
    }


@pytest.mark.parametrize("action", SSH_ACTIONS)
def test_bytes_arrive_right_both_ways(
    action: str, sshd: dict[str, str], lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = _server(lwr_server_factory, sshd)
    client, source, output = _submit(
        server.url, action, tmp_path, f"bytes-{action}", _destination(sshd)
    )
    status = final_status(client)
    assert status["status"] == "complete", status
    assert output.read_bytes() == source.read_bytes()  # into the job and back out, over ssh


@pytest.mark.parametrize("action", SSH_ACTIONS)
def test_failures_fail_the_job_with_what_ssh_said(
    action: str, sshd: dict[str, str], lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A wrong key, an unknown host key and a refused connection: each fails the job, promptly,
    with OpenSSH's own words; only the refused connection is retried."""
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    closed_port = _closed_port()
    wrong_key = (Path(sshd["KEY"]).parent / "ssh_host_ed25519_key").read_text()
    cases = [
        ("wrong-key", {}, _destination(sshd, ssh_key=wrong_key), "Permission denied"),
        ("host-key", {"staging_ssh_known_hosts": str(empty_known_hosts)}, _destination(sshd),
         "Host key verification failed"),
        ("refused", {}, _destination(sshd, ssh_port=closed_port), "Connection refused"),
    ]  # fmt: skip
    for name, options, destination, said in cases:
        server = _server(lwr_server_factory, sshd, **options)
        work = tmp_path / name
        work.mkdir()
        started = time.monotonic()
        client, source, output = _submit(server.url, action, work, f"{name}-{action}", destination)
        status = final_status(client, timeout=60)
        assert status["status"] == "failed", (name, status)
        reason = status["reason"]
        assert "staging inputs failed" in reason and str(source) in reason, reason
        assert said in reason, (name, reason)
        assert ("after 2 attempt(s)" in reason) == (name == "refused"), (name, reason)
        assert time.monotonic() - started < 45
        assert not output.exists()


def _closed_port() -> int:
    from tests.integration.server import free_port

    return free_port()


def test_accept_new_records_the_host_key_on_first_use(
    sshd: dict[str, str], lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    server = _server(
        lwr_server_factory,
        sshd,
        staging_ssh_known_hosts=str(known_hosts),
        staging_ssh_strict_host_key_checking="accept-new",
    )
    client, source, output = _submit(
        server.url, "remote_scp_transfer", tmp_path, "accept-new", _destination(sshd)
    )
    assert final_status(client)["status"] == "complete"
    assert output.read_bytes() == source.read_bytes()
    host = f"[{sshd['HOST']}]:{sshd['PORT']}"  # the entry may be hashed: ask ssh-keygen
    found = subprocess.run(["ssh-keygen", "-F", host, "-f", str(known_hosts)], capture_output=True)
    assert found.returncode == 0 and b"ssh-ed25519" in found.stdout, known_hosts.read_text()
