"""``remote_object_store_copy`` with Galaxy's own client and Galaxy's own object store code.

The "Galaxy side" writes a dataset into a distributed object store of two disk backends with
``galaxy-objectstore`` (as Galaxy would); LWR is pointed at the same configuration and must copy
the input out of the backend the reference names (the client's own path holds a decoy). The
output goes back by ``remote_transfer``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from lwr.staging.objectstore import build_object_store
from tests.integration.conftest import ServerFactory
from tests.integration.files_endpoint import FilesEndpoint, final_status

pytestmark = pytest.mark.integration


@pytest.fixture
def store_config(tmp_path: Path) -> Path:
    config = {
        "type": "distributed",
        "backends": [
            {"id": "primary", "type": "disk", "weight": 1, "files_dir": str(tmp_path / "a")},
            {
                "id": "secondary",
                "type": "disk",
                "weight": 0,
                "store_by": "uuid",
                "files_dir": str(tmp_path / "b"),
            },
        ],
    }
    path = tmp_path / "object_store_conf.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _galaxy_dataset(config: Path, source: Path, store_id: str) -> dict[str, Any]:
    """Store ``source`` as a new dataset, as Galaxy does; return the client's reference to it."""
    store = build_object_store(config)
    dataset = SimpleNamespace(id=42, uuid=uuid.uuid4(), object_store_id=store_id)
    store.create(dataset)
    store.update_from_file(dataset, file_name=str(source), create=True)
    assert store.get_filename(dataset) != str(source)
    return {"dataset_id": 42, "dataset_uuid": str(dataset.uuid), "object_store_id": store_id}


def _submit(url: str, endpoint: FilesEndpoint, work: Path, job_id: str, ref: Any) -> Any:
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.staging import up
    from pulsar.client.staging.inputs import CLIENT_INPUT_PATH_TYPES, ClientInput, ClientInputs
    from pulsar.client.staging.models import ClientJobDescription, ClientOutputs

    rules = work / "file_actions.json"
    rules.write_text(
        json.dumps({"paths": [{"path_types": "input", "action": "remote_object_store_copy"}]})
    )
    working = work / "working"
    working.mkdir()
    # the client insists the path exists; its bytes are a decoy: only the reference leads to the
    # dataset's real bytes
    galaxy_path = work / "dataset_42.dat"
    galaxy_path.write_text("decoy, not the dataset\n")
    output = work / "dataset_43.dat"
    client = build_client_manager().get_client(
        {
            "url": url,
            "default_file_action": "remote_transfer",
            "files_endpoint": endpoint.url,
            "file_action_config": str(rules),
        },
        job_id,
    )
    description = ClientJobDescription(
        command_line=f"cp {galaxy_path} {output}",
        client_inputs=ClientInputs(
            [
                ClientInput(
                    str(galaxy_path), CLIENT_INPUT_PATH_TYPES.INPUT_PATH, object_store_ref=ref
                )
            ]
        ),
        client_outputs=ClientOutputs(working_directory=str(working), output_files=[str(output)]),
        working_directory=str(working),
    )
    up.submit_job(client, description)
    return client, output


@pytest.mark.parametrize("store_id", ["primary", "secondary"])
def test_input_copied_out_of_the_object_store(
    store_id: str, store_config: Path, lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(os.urandom(1024 * 1024 + 3))
    ref = _galaxy_dataset(store_config, source, store_id)
    server = lwr_server_factory(app_options={"object_store_config_file": str(store_config)})
    with FilesEndpoint() as endpoint:
        client, output = _submit(server.url, endpoint, tmp_path, f"os-{store_id}", ref)
        status = final_status(client)
    assert status["status"] == "complete", status
    assert output.read_bytes() == source.read_bytes()
    assert not any(r.file_type == "input" for r in endpoint.requests)  # not over HTTP


def test_unknown_dataset_and_missing_store_fail_the_job_naming_why(
    store_config: Path, lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    ref = {"dataset_id": 7, "dataset_uuid": str(uuid.uuid4()), "object_store_id": "primary"}
    with FilesEndpoint() as endpoint:
        for name, options, said in (
            (
                "unknown",
                {"object_store_config_file": str(store_config)},
                "has no file for dataset 7",
            ),
            ("disabled", {}, "needs object_store_config_file"),
        ):
            server = lwr_server_factory(app_options=options)
            work = tmp_path / name
            work.mkdir()
            client, output = _submit(server.url, endpoint, work, f"os-{name}", ref)
            status = final_status(client)
            assert status["status"] == "failed", status
            assert "staging inputs failed" in status["reason"] and said in status["reason"]
            assert "dataset_42.dat" in status["reason"]
            assert not output.exists()


def test_a_broken_store_configuration_stops_the_start(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("type: no-such-store\n")
    server = lwr_server_factory(app_options={"object_store_config_file": str(broken)}, start=False)
    with pytest.raises(RuntimeError, match="LWR exited"):
        server.start()
    assert "object_store_config_file" in server.log() and "no-such-store" in server.log()
