"""The object store mover against a real (disk) Galaxy object store: what it refuses, and why."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from lwr.errors import ConfigurationError, StagingError
from lwr.staging.movers import ClientFile, StagingSettings
from lwr.staging.objectstore import ObjectStoreMover

pytest.importorskip("galaxy.objectstore")


@pytest.fixture
def mover(tmp_path: Path) -> ObjectStoreMover:
    config = tmp_path / "object_store_conf.yml"
    config.write_text(f"type: disk\nfiles_dir: {tmp_path / 'objects'}\n")
    return ObjectStoreMover(StagingSettings(object_store_config_file=config))


@pytest.mark.parametrize(
    ("ref", "complaint"),
    [
        (None, "comes without an object_store_ref"),
        ({"dataset_id": 3}, "comes without an object_store_ref"),
        ({"dataset_id": "x", "dataset_uuid": "y"}, "malformed object_store_ref"),
    ],
)
def test_inputs_without_a_usable_reference_are_refused(
    mover: ObjectStoreMover, tmp_path: Path, ref: object, complaint: str
) -> None:
    file = ClientFile("/g/dataset_3_files/x", "input", {"object_store_ref": ref})
    with pytest.raises(StagingError, match=complaint):
        mover.fetch(file, tmp_path / "target")


def test_a_dataset_the_store_does_not_have(mover: ObjectStoreMover, tmp_path: Path) -> None:
    ref = {"dataset_id": 3, "dataset_uuid": str(uuid.uuid4()), "object_store_id": None}
    with pytest.raises(StagingError, match=r"has no file for dataset 3.*ObjectNotFound"):
        mover.fetch(
            ClientFile("/g/dataset_3.dat", "input", {"object_store_ref": ref}), tmp_path / "t"
        )


def test_outputs_are_refused(mover: ObjectStoreMover, tmp_path: Path) -> None:
    with pytest.raises(StagingError, match="cannot send outputs"):
        mover.send(tmp_path, ClientFile("/g/dataset_4.dat", "output"))


def test_a_missing_configuration_file_is_a_configuration_error(tmp_path: Path) -> None:
    settings = StagingSettings(object_store_config_file=tmp_path / "absent.yml")
    with pytest.raises(ConfigurationError, match=r"absent\.yml.*does not exist"):
        ObjectStoreMover(settings)
