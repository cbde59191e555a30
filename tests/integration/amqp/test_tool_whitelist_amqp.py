"""Tool whitelisting in message-queue mode: a refused job ends ``failed`` with the rule named.

Over the broker there is no HTTP answer to carry a 403: the refusal comes back as the job's final
status update, whose ``reason`` (and stderr, which Galaxy shows) names the rule. Files the server
stages itself are checked after staging, before the job is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.amqp.support import Client, WeblessServer
from tests.integration.galaxy_job import WRAPPER, write_toolbox

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

SETUP = {"tool_id": "head_tool", "tool_version": "1.0"}


def staged(name: str, file_type: str, contents: str) -> dict[str, object]:
    """A remote_staging setup entry the server writes itself (the client's "message" action)."""
    action = {"action_type": "message", "contents": contents}
    return {"name": name, "type": file_type, "action": action}


def test_refusals_over_the_broker(
    manager_name: str,
    webless_factory: Callable[..., WeblessServer],
    client_factory: Callable[..., Client],
    tmp_path: Path,
) -> None:
    toolbox = write_toolbox(tmp_path / "admin")
    server = webless_factory(manager_name, tool_config_files=str(toolbox))
    client = client_factory(manager_name)
    jobs = server.jobs_directory(manager_name)

    client.setup("unknown-tool", "echo hi")  # the helper's tool is cat1, not whitelisted
    failed = client.wait_status("unknown-tool", "failed")
    assert "refused by tool whitelist rule 'tool_id'" in failed["reason"]
    assert "rule 'tool_id'" in failed["stderr"]

    client.setup("bad-command", "id", setup_params={"job_id": "bad-command", **SETUP})
    failed = client.wait_status("bad-command", "failed")
    assert "rule 'command_validator'" in failed["reason"]

    root = jobs / "altered-tool"
    command = (
        f"python3 {root}/tool_files/wrapper.py {root}/configs/args "
        f"{root}/inputs/dataset_1.dat {root}/outputs/dataset_2.dat"
    )
    for job_id, tool_file in (("altered-tool", "import os\n"), ("good-tool", WRAPPER)):
        files = [
            staged("wrapper.py", "tool", tool_file),
            staged("args", "config", "--lines 1"),
            staged("dataset_1.dat", "input", "first\nsecond\n"),
        ]
        client.setup(
            job_id,
            command.replace("altered-tool", job_id),
            setup_params={"job_id": job_id, **SETUP},
            remote_staging={"setup": files},
        )
    failed = client.wait_status("altered-tool", "failed")
    assert "rule 'tool_file'" in failed["reason"] and "'wrapper.py' differs" in failed["reason"]
    complete = client.wait_status("good-tool", "complete")
    assert complete["returncode"] == 0, complete
    assert (jobs / "good-tool" / "outputs" / "dataset_2.dat").read_text() == "first\n"
    assert "Traceback" not in server.log()
