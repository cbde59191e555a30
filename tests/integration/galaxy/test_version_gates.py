"""Galaxy's ``pulsar_version`` gates, each tried from both sides with the real Galaxy.

The servers of ``rest_v0_6``, ``rest_v0_14`` and ``mq_v0_15_12`` report an older protocol
(``pulsar_protocol_version``); ``rest`` and ``mq`` report the one LWR implements. Galaxy must:
refuse a server below 0.7.0.dev3; below 0.14.999 run the tool command inline rather than in a new
shell; below 0.15.13 find discovered outputs with the tools' raw patterns, from 0.15.13 with
dataset collector descriptions — and the datasets must be right on every side.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.managers.directory import SUBDIRECTORIES
from tests.integration.galaxy.api import INPUT, Galaxy
from tests.integration.galaxy.test_tools import outputs

pytestmark = [pytest.mark.integration, pytest.mark.galaxy, pytest.mark.timeout(900)]

PARTS = {"part_00": "hello\n", "part_01": "from\n", "part_02": "galaxy\n"}


def _scripts(jobs_directory: Path) -> list[str]:
    return [script.read_text() for script in sorted(jobs_directory.glob("*/job.sh"))]


def test_below_0_7_galaxy_refuses_the_server(galaxy: Galaxy) -> None:
    env = galaxy.environments["rest_v0_6"]
    run = galaxy.run("cat", "rest_v0_6", galaxy.input_dataset())
    job = galaxy.wait(run["jobs"][0]["id"])
    assert job["state"] == "error", job
    assert "requires Pulsar version 0.7.0.dev3 or newer" in galaxy.process.log_text()
    (output,) = job["outputs"].values()
    assert galaxy.dataset(output["id"])["misc_info"] == "Job failed"  # all the user is told
    # Galaxy set the job up (that is how it learns the version) and then never came back: LWR
    # keeps the empty job directory and a record in state "setup", and ran nothing.
    (directory,) = [d for d in env.jobs_directory.iterdir() if not d.name.startswith(".")]
    assert not (directory / "job.sh").exists()
    assert sorted(p.name for p in directory.iterdir()) == sorted(SUBDIRECTORIES)
    assert "queued (attempt" not in env.server.log()


def test_around_0_14_999_both_command_styles_run(galaxy: Galaxy) -> None:
    """Below 0.14.999 Galaxy writes the tool command into the command line itself (when it
    rewrites the command line's paths; with ``rewrite_parameters`` it never does).

    LWR runs both styles as sent. Galaxy 26.1's inline style, though, appends its own
    ``> ../metadata/tool_stdout`` to the tool's last command, so a tool that redirects that
    command's output loses it to the job's stdout: shown here, and documented in docs/galaxy.md
    as the reason not to report below 0.14.999 to a destination that rewrites paths.
    """
    dataset = galaxy.input_dataset()
    runs = {env: galaxy.run("cat", env, dataset) for env in ("rest_v0_14", "rest_paths")}
    jobs = {env: galaxy.wait(run["jobs"][0]["id"]) for env, run in runs.items()}
    for env, job in jobs.items():
        assert job["state"] == "ok", (env, job, galaxy.tail())
    assert outputs(galaxy, jobs["rest_paths"]) == {"out_file1": INPUT + "ran on LWR\n"}
    assert outputs(galaxy, jobs["rest_v0_14"]) == {"out_file1": INPUT}
    assert jobs["rest_v0_14"]["tool_stdout"] == "ran on LWR\n"

    old_style = _scripts(galaxy.environments["rest_v0_14"].jobs_directory)
    assert old_style and not any("tool_script.sh" in script for script in old_style)
    assert all("ran on LWR" in script for script in old_style)  # the tool's own command
    new_style = _scripts(galaxy.environments["rest_paths"].jobs_directory)
    assert new_style and all("tool_script.sh" in script for script in new_style)


@pytest.mark.parametrize(
    ("environment", "version", "collectors"),
    [
        ("rest_v0_14", "0.14.0", False),
        ("rest", "0.16.0", True),
        ("mq_v0_15_12", "0.15.12", False),
        ("mq", "0.16.0", True),
    ],
)
def test_around_0_15_13_discovered_outputs_are_right(
    galaxy: Galaxy, environment: str, version: str, collectors: bool
) -> None:
    """Over REST Galaxy decides at the job's end, from the final status's ``pulsar_version``,
    whether it collects discovered outputs with collector descriptions or raw patterns.

    Over MQ there is no setup round trip: Galaxy builds the client outputs at submit time against
    its own client library's version (0.15.16), so LWR always receives collector descriptions
    and picks the files it posts back with them (``tests/unit/staging/test_outputs.py`` covers
    the raw-pattern side); the reported version only changes Galaxy's decision at the end."""
    run = galaxy.run("discover", environment, galaxy.input_dataset())
    job = galaxy.wait(run["jobs"][0]["id"])
    assert job["state"] == "ok", (job, galaxy.tail())
    (collection,) = run["output_collections"]
    assert galaxy.collection_contents(collection["id"]) == PARTS
    supports = "supports" if collectors else "does not support"
    assert f"Pulsar version {version} {supports} dataset collector descriptions" in (
        galaxy.process.log_text()
    )
    # no final status without a version: Galaxy would take it for Pulsar 0.6.0
    assert "Pulsar version 0.6.0" not in galaxy.process.log_text()
