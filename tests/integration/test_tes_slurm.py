"""TES tasks on the real one-node Slurm (``scripts/services/slurm-up.sh``), driven by py-tes.

The server runs a ``queued_cli`` Slurm manager; the task's resources must reach ``sbatch``
(checked with ``scontrol show job``, which keeps finished jobs for five minutes here), and
a strict ``backend_parameters`` key Slurm does not take must be refused with 400.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import tes

from tests.conftest import require_service
from tests.integration.cli.services import slurm_problem
from tests.integration.server import LwrServer, free_port, write_server_ini

pytestmark = [pytest.mark.integration, pytest.mark.slurm]

MANAGERS = """[manager:slurm]
type = queued_cli
job_plugin = slurm
shell_plugin = local
min_polling_interval = 0.5
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LwrServer]:
    problem = slurm_problem()
    require_service(problem is None, problem or "")
    directory: Path = tmp_path_factory.mktemp("tes-slurm")
    port = free_port()
    write_server_ini(directory, port, {"private_token": "slurm-token"})
    (directory / "job_managers.ini").write_text(MANAGERS)
    lwr = LwrServer(directory, port).start()
    yield lwr
    lwr.stop()


def client(server: LwrServer) -> tes.HTTPClient:
    return tes.HTTPClient(server.url + "managers/slurm", token="slurm-token", timeout=30)


def wait(server: LwrServer, task_id: str) -> tes.Task:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = client(server).get_task(task_id, view="FULL")
        if task.state not in ("QUEUED", "INITIALIZING", "RUNNING"):
            return task
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} not final:\n{server.log()}")


def scontrol(job_id: str) -> str:
    shown = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=20
    )
    return shown.stdout


def test_resources_reach_sbatch(server: LwrServer) -> None:
    task = tes.Task(
        name="on-slurm",
        inputs=[tes.Input(path="/in/x.txt", content="slurm input\n")],
        executors=[
            tes.Executor(image="debian", command=["sh", "-c", "cat /in/x.txt; nproc"]),
        ],
        resources=tes.Resources(
            cpu_cores=1,
            ram_gb=0.1,
            backend_parameters={"time": "7", "VmSize": "ignored"},
        ),
    )
    done = wait(server, client(server).create_task(task))
    assert done.state == "COMPLETE", server.log()
    log = done.logs[0]
    assert log.logs[0].stdout.startswith("slurm input\n")
    external_id = log.metadata["external_id"]
    shown = scontrol(external_id)
    assert "MinMemoryNode=103M" in shown and "TimeLimit=00:07:00" in shown, shown
    assert "CPUs/Task=1" in shown, shown
    # the unsupported key is neither stored nor returned, and the task log says why
    assert done.resources.backend_parameters == {"time": "7"}
    assert any("VmSize" in line for line in log.system_logs)


def test_strict_unsupported_backend_parameter_is_400(server: LwrServer) -> None:
    body = {
        "executors": [{"image": "x", "command": ["true"]}],
        "resources": {"backend_parameters": {"VmSize": "big"}, "backend_parameters_strict": True},
    }
    answer = requests.post(
        server.url + "managers/slurm/ga4gh/tes/v1/tasks",
        json=body,
        headers={"Authorization": "Bearer slurm-token"},
        timeout=30,
    )
    assert answer.status_code == 400 and "VmSize" in answer.json()["message"]
    info = requests.get(server.url + "managers/slurm/ga4gh/tes/v1/service-info", timeout=30).json()
    assert "time" in info["tesResources_backend_parameters"]


def test_executor_error_on_slurm(server: LwrServer) -> None:
    task = tes.Task(executors=[tes.Executor(image="x", command=["sh", "-c", "exit 9"])])
    done = wait(server, client(server).create_task(task))
    assert done.state == "EXECUTOR_ERROR" and done.logs[0].logs[0].exit_code == 9
