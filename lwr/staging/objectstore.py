"""``remote_object_store_copy``: inputs read straight from the Galaxy object store they live in.

When LWR's machine can reach Galaxy's datasets through the same object store (a shared disk, a
distributed or hierarchical store of disks, S3, iRODS…), Galaxy's client sends each input
dataset's reference (``object_store_ref``: dataset id, uuid and the id of the store holding it)
instead of a URL, and LWR copies the file from where the store keeps it. The store is built from
a Galaxy object store configuration file (``object_store_config_file``, XML or YAML, the same
format Galaxy reads) with Galaxy's own ``galaxy-objectstore`` package, so every backend Galaxy
supports resolves the same way here. Nothing of Galaxy's database is needed: the reference
carries all the store needs.

Only inputs: Galaxy's client never asks a server to write an output into its object store
(Pulsar refuses it too), and extra-files and metadata files carry no reference; both fail the job
with a message saying so.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lwr.errors import ConfigurationError, StagingError
from lwr.staging.movers import ClientFile, Mover, StagingSettings, copy_atomically

log = logging.getLogger(__name__)

_REF_KEYS = ("dataset_id", "dataset_uuid", "object_store_id")


class ObjectStoreMover(Mover):
    """Copies an input out of the configured Galaxy object store by its ``object_store_ref``."""

    action_type = "remote_object_store_copy"

    def __init__(self, settings: StagingSettings) -> None:
        super().__init__(settings)
        self.store = (
            build_object_store(settings.object_store_config_file)
            if settings.object_store_config_file is not None
            else None
        )

    def fetch(self, file: ClientFile, target: Path) -> None:
        if self.store is None:
            raise StagingError(
                "remote_object_store_copy is not enabled on this server: it needs "
                "object_store_config_file (a Galaxy object store configuration) in server.ini"
            )
        dataset = _dataset(file.param("object_store_ref"), file.path)
        try:
            filename = self.store.get_filename(dataset)
        except Exception as exc:  # the store's own errors (ObjectNotFound, a backend's)
            raise StagingError(
                f"remote_object_store_copy: the object store has no file for dataset "
                f"{dataset.id} (uuid {dataset.uuid}, store {dataset.object_store_id!r}): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        copy_atomically(filename, target)

    def send(self, source: Path, file: ClientFile) -> None:
        raise StagingError(
            "remote_object_store_copy cannot send outputs: writing into Galaxy's object store "
            "is Galaxy's business (use remote_transfer or remote_transfer_tus for outputs)"
        )


def build_object_store(config_file: Path) -> Any:
    """A Galaxy object store from its configuration file; ConfigurationError naming the fault."""
    try:
        from galaxy.objectstore import build_object_store_from_config
    except ImportError as exc:
        raise ConfigurationError(
            "object_store_config_file needs the galaxy-objectstore package, which is not "
            f"installed: pip install 'lwr[objectstore]' ({exc})"
        ) from exc
    if not config_file.is_file():
        raise ConfigurationError(f"object_store_config_file {str(config_file)!r} does not exist")
    # the application settings Galaxy's stores read, for a store LWR only reads from
    settings = SimpleNamespace(
        object_store_config_file=str(config_file),
        object_store_config=None,
        object_store=None,
        distributed_object_store_config_file=None,
        object_store_check_old_style=False,
        object_store_cache_size=-1,
        object_store_cache_path=os.path.join(tempfile.gettempdir(), "lwr-object-store-cache"),
        file_path=str(config_file.parent),
        new_file_path=tempfile.gettempdir(),
        job_working_directory=None,
        jobs_directory=None,
        umask=0o022,
        gid=os.getgid(),
        enable_quotas=False,
    )
    try:
        store = build_object_store_from_config(settings)
    except Exception as exc:  # Galaxy's parser raises anything from KeyError to its own types
        raise ConfigurationError(
            f"object_store_config_file {str(config_file)!r}: {type(exc).__name__}: {exc}"
        ) from exc
    log.info("object store for remote_object_store_copy: %s", type(store).__name__)
    return store


def _dataset(ref: Any, path: str) -> SimpleNamespace:
    """The dataset an ``object_store_ref`` names, as the object store's lookups want it."""
    if not isinstance(ref, Mapping) or any(ref.get(k) in (None, "") for k in _REF_KEYS[:2]):
        raise StagingError(
            f"remote_object_store_copy: {path} comes without an object_store_ref "
            "(only input datasets carry one; extra files and metadata files need another action)"
        )
    try:
        dataset_id = int(ref["dataset_id"])
        dataset_uuid = uuid.UUID(str(ref["dataset_uuid"]))
    except (TypeError, ValueError):
        raise StagingError(
            f"remote_object_store_copy: malformed object_store_ref for {path}: {dict(ref)!r}"
        ) from None
    store_id = ref.get("object_store_id")
    return SimpleNamespace(
        id=dataset_id, uuid=dataset_uuid, object_store_id=str(store_id) if store_id else None
    )
