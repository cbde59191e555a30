"""What a test does with the session's Galaxy: upload, run a tool on an environment, read back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from tests.integration.galaxy.instance import Environment, GalaxyProcess, dumps
from tests.integration.galaxy.tools import tool_id

#: the content of the shared input dataset
INPUT = "hello\nfrom\ngalaxy\n"
FINAL_STATES = {"ok", "error", "deleted", "deleted_new", "failed", "skipped"}


@dataclass
class Galaxy:
    """The running Galaxy of the session, as its admin user sees it through bioblend.

    ``gi`` is the bioblend ``GalaxyInstance``: a test that wants more than these helpers (the
    job metrics of a job, say) uses it directly, on the same Galaxy and history.
    """

    process: GalaxyProcess
    gi: Any
    key: str
    history_id: str
    environments: dict[str, Environment]
    _input: str | None = None

    @property
    def url(self) -> str:
        return self.process.url

    def input_dataset(self) -> str:
        """The session's shared input (:data:`INPUT`), uploaded once: uploads are slow jobs."""
        if self._input is None:
            self._input = self.upload(INPUT)
        return self._input

    def upload(self, content: str, name: str = "input.txt") -> str:
        """A txt dataset with ``content`` (uploaded by Galaxy's local fetch tool); its id."""
        response = requests.post(
            f"{self.url}/api/tools/fetch",
            headers={"x-api-key": self.key},
            json={
                "history_id": self.history_id,
                "targets": [
                    {
                        "destination": {"type": "hdas"},
                        "elements": [
                            {"src": "pasted", "paste_content": content, "ext": "txt", "name": name}
                        ],
                    }
                ],
            },
            timeout=60,
        )
        response.raise_for_status()
        dataset_id = str(response.json()["outputs"][0]["id"])
        self.gi.datasets.wait_for_dataset(dataset_id, maxwait=120)
        return dataset_id

    def run(self, tool: str, environment: str, dataset_id: str) -> dict[str, Any]:
        """Start ``tool`` on ``environment`` with ``dataset_id`` as input1; Galaxy's answer."""
        return dict(
            self.gi.tools.run_tool(
                self.history_id,
                tool_id(tool, environment),
                {"input1": {"src": "hda", "id": dataset_id}},
            )
        )

    def wait(self, job_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """The job's full details once it is in a final state."""
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.gi.jobs.show_job(job_id, full_details=True)
            if job["state"] in FINAL_STATES:
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} not final in {timeout}s: {dumps(job)}\n{self.tail()}")

    def wait_state(self, job_id: str, states: set[str], timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.gi.jobs.show_job(job_id, full_details=True)
            if job["state"] in states:
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} never {states}: {dumps(job)}\n{self.tail()}")

    def content(self, dataset_id: str) -> str:
        data = self.gi.datasets.download_dataset(dataset_id, require_ok_state=False)
        return bytes(data).decode()

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        return dict(self.gi.datasets.show_dataset(dataset_id))

    def collection_contents(self, collection_id: str) -> dict[str, str]:
        """Element identifier -> content of every dataset in an HDCA."""
        collection = self.gi.histories.show_dataset_collection(self.history_id, collection_id)
        return {
            element["element_identifier"]: self.content(element["object"]["id"])
            for element in collection["elements"]
        }

    def tail(self) -> str:
        return "--- Galaxy log ---\n" + self.process.tail(80)
