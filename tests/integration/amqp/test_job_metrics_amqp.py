"""Job metrics in message-queue mode: the server posts the ``__instrument_*`` files back itself.

Galaxy's full client scenario runs over the broker with ``remote_transfer``: LWR fetches the
inputs from the files endpoint and, after the job, posts its outputs and the metadata files
matching the client's collection patterns back to it — the instrument files among them, where
Galaxy's Pulsar runner collects metrics from.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.amqp.support import AMQP_URL, WeblessServer
from tests.integration.conftest import run_check

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def test_instrument_files_posted_back_over_the_broker(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from galaxy.job_metrics import JobMetrics
    from pulsar.client.coexecution_manager import build_client_manager
    from pulsar.client.test import check

    from tests.integration.files_endpoint import FilesEndpoint

    config = tmp_path / "job_metrics_conf.xml"
    config.write_text("<job_metrics><core/><uname/><hostname/></job_metrics>")
    server = webless_factory(manager_name, job_metrics_config_file=str(config))
    monkeypatch.setattr(
        check, "build_client_manager", functools.partial(build_client_manager, manager=manager_name)
    )
    with FilesEndpoint() as endpoint:
        run_check(
            None,
            manager_url=AMQP_URL,
            default_file_action="remote_transfer",
            files_endpoint=endpoint.url,
            jobs_directory=str(server.jobs_directory(manager_name)),
            cleanup=False,  # keep the client's files to read the metrics from
        )
    posted = [Path(p) for p in endpoint.served("POST") if "__instrument_" in p]
    names = {p.name for p in posted}
    assert {
        "__instrument_core_epoch_start",
        "__instrument_core_epoch_end",
        "__instrument_core_galaxy_slots",
        "__instrument_uname_uname",
        "__instrument_hostname_hostname",
    } <= names, names
    metadata = {p.parent for p in posted}
    assert len(metadata) == 1, metadata  # all in the client's metadata directory
    directory = metadata.pop()
    try:
        properties = JobMetrics(str(config)).collect_properties("lwr", 1, str(directory))
    finally:
        assert directory.parent.name.startswith("pulsar-check-client.")
        shutil.rmtree(directory.parent)  # check.py's own files, left by cleanup=False
    assert properties["core"]["galaxy_slots"] == 1
    assert properties["core"]["start_epoch"] <= properties["core"]["end_epoch"]
    assert properties["uname"]["uname"].startswith("Linux ")
