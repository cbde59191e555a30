"""The session's real Galaxy and the LWR servers its job environments point at.

One Galaxy per test session (starting it takes ~20-60 s, installing it once a few minutes): every
test of this package shares it — put a new test module here and request the ``galaxy`` fixture
(as test_job_metrics.py and test_tool_whitelist.py do). It is package-scoped so that Galaxy
stops once this package's tests are done instead of idling through the rest of the suite. The
environments:

========================  =====  ===============================================================
environment               how    LWR server
========================  =====  ===============================================================
``rest``                  REST   defaults (reports the Pulsar protocol LWR implements)
``mq``                    AMQP   staging directory = the destination's ``jobs_directory``;
                                 fetches inputs from and posts outputs to Galaxy's job files API
``rest_v0_6``             REST   ``pulsar_protocol_version = 0.6.0`` (Galaxy refuses it)
``rest_paths``            REST   defaults; the destination has ``rewrite_parameters: false``
                                 (Galaxy rewrites paths in the command line itself)
``rest_v0_14``            REST   ``0.14.0``, ``rewrite_parameters: false``: Galaxy runs the
                                 tool command inline (no new shell), legacy output patterns
``mq_v0_15_12``           AMQP   ``0.15.12`` (only Galaxy's end-of-job decision sees it: over
                                 MQ Galaxy gates on its own client library's version)
``rest_metrics``          REST   ``job_metrics_config_file``: the plugins Galaxy enables too;
                                 the destination's ``env`` sets ``LWR_METRICS_MARK``
``rest_tools``            REST   ``tool_config_files``: only this environment's ``cat`` tool
``rest_resubmit``         REST   defaults; Galaxy resubmits a failed job to ``rest_resubmit_retry``
                                 (the same server, ``LWR_TEST_SLEEP=0`` in the job's environment)
========================  =====  ===============================================================
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.integration.galaxy.api import Galaxy
from tests.integration.galaxy.features import LWR_JOB_METRICS, METRICS_MARK, whitelist_files
from tests.integration.galaxy.instance import (
    AMQP_URL,
    Environment,
    GalaxyProcess,
    admin_key,
    install,
)
from tests.integration.server import LwrServer, free_port, write_server_ini

TOKEN = "galaxy-tests-token"
QUEUES = ("setup", "kill", "status", "status_update", "setup_ack", "kill_ack")
QUEUES += ("status_update_ack",)

#: the 0.14.999 gate only applies when Galaxy rewrites the paths of the command line itself
PATH_REWRITING = {"rewrite_parameters": "false"}


@dataclass(frozen=True)
class Spec:
    """One environment: over the message queue or not, the LWR server's extra ``[app:main]``
    options, files written beside its server.ini (relative names; the options may name them),
    and extra destination parameters in Galaxy's job_conf. Add one here for a new kind of
    check: the session then has it beside the others, still with one Galaxy."""

    mq: bool = False
    app_options: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    #: parameters of a ``<name>_retry`` destination Galaxy resubmits failed jobs to, if any
    retry: Mapping[str, Any] | None = None


#: the resubmission destination's difference: the sleep tool no longer sleeps
RETRY = {"env": [{"name": "LWR_TEST_SLEEP", "value": "0"}]}

ENVIRONMENTS: dict[str, Spec] = {
    "rest": Spec(),
    "mq": Spec(mq=True),
    "rest_v0_6": Spec(app_options={"pulsar_protocol_version": "0.6.0"}),
    "rest_paths": Spec(params=PATH_REWRITING),
    "rest_v0_14": Spec(app_options={"pulsar_protocol_version": "0.14.0"}, params=PATH_REWRITING),
    "mq_v0_15_12": Spec(mq=True, app_options={"pulsar_protocol_version": "0.15.12"}),
    "rest_metrics": Spec(
        app_options={"job_metrics_config_file": "job_metrics_conf.xml"},
        files={"job_metrics_conf.xml": LWR_JOB_METRICS},
        params={"env": [{"name": METRICS_MARK[0], "value": METRICS_MARK[1]}]},
    ),
    "rest_tools": Spec(
        app_options={"tool_config_files": "tool_conf.xml"}, files=whitelist_files("rest_tools")
    ),
    "rest_resubmit": Spec(retry=RETRY),
}


def _broker_up() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


def _lwr(root: Path, name: str, spec: Spec, prefix: str) -> Environment:
    directory = root / name
    directory.mkdir(parents=True)
    for relative, content in spec.files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(content)
    port = free_port()
    options = {"private_token": TOKEN, **spec.app_options}
    if spec.mq:
        options.update(message_queue_url=AMQP_URL, amqp_key_prefix=prefix)
    write_server_ini(directory, port, options)
    server = LwrServer(directory, port).start()
    return Environment(
        name,
        server,
        mq=spec.mq,
        key_prefix=prefix if spec.mq else None,
        params=dict(spec.params),
        retry=None if spec.retry is None else dict(spec.retry),
    )


def _kill_leftover_jobs(root: Path) -> None:
    """Jobs outlive their server by design; a failed test must not leave one running."""
    import psutil

    for proc in psutil.process_iter(["cwd"]):
        try:
            if proc.info["cwd"] and proc.info["cwd"].startswith(f"{root}/"):
                proc.kill()
        except psutil.Error:
            continue


def _delete_queues(prefixes: list[str]) -> None:
    import kombu

    with kombu.Connection(AMQP_URL) as connection:
        channel = connection.channel()
        for prefix in prefixes:
            for queue in QUEUES:
                try:
                    channel.queue_delete(f"{prefix}{queue}")
                except Exception:  # an absent queue closes the channel: open another
                    channel = connection.channel()


@pytest.fixture(scope="package")
def galaxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Galaxy]:
    """A running Galaxy, its admin user and a history, jobs routed to LWR per environment."""
    require_service(_broker_up(), "RabbitMQ is not reachable at 127.0.0.1:5672")
    from bioblend.galaxy import GalaxyInstance

    venv = install()
    root = tmp_path_factory.mktemp("galaxy")
    session = uuid.uuid4().hex[:8]
    prefixes = [f"lwrgx{session}_{name}_" for name in ENVIRONMENTS]
    environments: dict[str, Environment] = {}
    process = GalaxyProcess(venv, root / "galaxy", free_port())
    try:
        for (name, spec), prefix in zip(ENVIRONMENTS.items(), prefixes, strict=True):
            environments[name] = _lwr(root / "lwr", name, spec, prefix)
        process.configure(list(environments.values()), TOKEN)
        process.start()
        key = admin_key(process)
        gi = GalaxyInstance(process.url, key=key)
        history = gi.histories.create_history("lwr-integration")
        yield Galaxy(process, gi, key, history["id"], environments)
    finally:
        process.stop()
        for env in environments.values():
            env.server.stop()
        _kill_leftover_jobs(root / "lwr")
        _delete_queues(prefixes)
