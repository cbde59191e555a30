"""A real Galaxy (PyPI ``galaxy-app``) started once per test session, its jobs sent to LWR.

:func:`install` runs ``scripts/services/galaxy-up.sh`` (idempotent: a minute the first time,
seconds after), so a fresh CI machine needs nothing else. :class:`GalaxyProcess` writes an
API-only configuration (SQLite, the test tools of :mod:`tools`, a job configuration with one
environment per LWR server) and serves it with uvicorn. :class:`Galaxy` is what tests use: one
admin user, one history, helpers to upload, run a tool, wait, and read outputs — plus the
bioblend instance itself for anything else (job metrics, say).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.integration.galaxy.features import GALAXY_JOB_METRICS
from tests.integration.galaxy.tools import tool_id, write_tools
from tests.integration.server import REPO, LwrServer

GALAXY_VERSION = os.environ.get("LWR_GALAXY_VERSION", "26.1.2")
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
#: Galaxy's own tools (uploads, metadata) run locally; only the test tools go to LWR
LOCAL_TOOLS = ("__DATA_FETCH__", "upload1", "__SET_METADATA__")


def install() -> Path:
    """Install Galaxy (once) with the project's script; return its virtualenv."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "services" / "galaxy-up.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"installing Galaxy failed:\n{result.stderr[-4000:]}")
    for line in result.stdout.splitlines():
        if line.startswith("export LWR_GALAXY_VENV="):
            return Path(line.split("=", 1)[1].strip())
    raise RuntimeError(f"galaxy-up.sh printed no LWR_GALAXY_VENV:\n{result.stdout}")


@dataclass
class Environment:
    """One job environment of Galaxy's job_conf: an LWR server reached over REST or AMQP."""

    name: str
    server: LwrServer
    mq: bool = False
    #: the amqp_key_prefix shared by the server and Galaxy's runner (MQ only)
    key_prefix: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: when set, Galaxy resubmits a failed job to ``<name>_retry``: this destination (the same
    #: LWR server and manager) with these parameters on top
    retry: dict[str, Any] | None = None

    @property
    def jobs_directory(self) -> Path:
        """The server's staging directory: Pulsar's layout puts job N at <it>/N."""
        return self.server.directory / "files" / "staging"


def job_conf(environments: list[Environment], token: str) -> dict[str, Any]:
    """Galaxy's job_conf.yml: a REST runner, one MQ runner per MQ server, tools routed by id."""
    runners: dict[str, Any] = {
        "local": {"load": "galaxy.jobs.runners.local:LocalJobRunner", "workers": 2},
        "lwr_rest": {"load": "galaxy.jobs.runners.pulsar:PulsarRESTJobRunner", "workers": 4},
    }
    execution: dict[str, Any] = {"default": "local", "environments": {"local": {"runner": "local"}}}
    tools: list[dict[str, str]] = [{"id": t, "environment": "local"} for t in LOCAL_TOOLS]
    for env in environments:
        if env.mq:
            runner = f"lwr_mq_{env.name}"
            runners[runner] = {
                "load": "galaxy.jobs.runners.pulsar:PulsarMQJobRunner",
                "amqp_url": AMQP_URL,
                "amqp_key_prefix": env.key_prefix,
                "workers": 2,
            }
            destination = {
                "runner": runner,
                "jobs_directory": str(env.jobs_directory),
                "default_file_action": "remote_transfer",
            }
        else:
            destination = {
                "runner": "lwr_rest",
                "url": env.server.url,
                "private_token": token,
                "default_file_action": "transfer",
            }
        destination.update(env.params)
        if env.retry is not None:
            retry = f"{env.name}_retry"
            execution["environments"][retry] = {**destination, **env.retry}
            destination["resubmit"] = [{"condition": "any_failure", "environment": retry}]
        execution["environments"][env.name] = destination
        tools.extend(
            {"id": tool_id(tool, env.name), "environment": env.name}
            for tool in ("cat", "split", "discover", "fail", "sleep")
        )
    return {"runners": runners, "execution": execution, "tools": tools}


class GalaxyProcess:
    """Galaxy's configuration in ``root`` and its uvicorn process."""

    def __init__(self, venv: Path, root: Path, port: int) -> None:
        self.venv = venv
        self.root = root
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.bootstrap_key = f"bootstrap-{os.urandom(8).hex()}"
        self.log_path = root / "galaxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    def configure(self, environments: list[Environment], token: str) -> None:
        config = self.root / "config"
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        tool_conf = write_tools(config / "tools", [env.name for env in environments])
        (config / "tool_conf.xml").write_text(tool_conf)
        (config / "job_conf.yml").write_text(yaml.safe_dump(job_conf(environments, token)))
        galaxy = {
            "data_dir": str(self.root / "data"),
            "database_connection": (
                f"sqlite:///{self.root}/data/universe.sqlite?isolation_level=IMMEDIATE"
            ),
            "database_auto_migrate": True,
            "tool_config_file": str(config / "tool_conf.xml"),
            "job_config_file": str(config / "job_conf.yml"),
            "admin_users": "admin@example.org",
            "bootstrap_admin_api_key": self.bootstrap_key,
            "id_secret": "lwr-tests-id-secret",
            "galaxy_infrastructure_url": self.url,
            "conda_auto_init": False,
            "conda_auto_install": False,
            "watch_tools": "false",
            "enable_celery_tasks": False,
            "static_enabled": False,
            "enable_mulled_containers": False,
            "cleanup_job": "never",
            # the plugins Galaxy shows (only those it enables), for the rest_metrics environment
            "job_metrics": GALAXY_JOB_METRICS,
        }
        (config / "galaxy.yml").write_text(yaml.safe_dump({"galaxy": galaxy}))

    def start(self, timeout: float = 300.0) -> None:
        env = dict(os.environ)
        env.update(
            GALAXY_CONFIG_FILE=str(self.root / "config" / "galaxy.yml"),
            PATH=f"{self.venv / 'bin'}:{env.get('PATH', '')}",
            VIRTUAL_ENV=str(self.venv),
            GALAXY_VIRTUAL_ENV=str(self.venv),
        )
        env.pop("PYTHONPATH", None)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.venv / "bin" / "python"),
                    "-m",
                    "uvicorn",
                    "--factory",
                    "galaxy.webapps.galaxy.fast_factory:factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Galaxy exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/version", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        raise RuntimeError(f"Galaxy did not answer in {timeout}s:\n{self.tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def admin_key(galaxy: GalaxyProcess) -> str:
    """Create the admin user with the bootstrap key (which is no user) and return its API key."""
    from bioblend.galaxy import GalaxyInstance

    boot = GalaxyInstance(galaxy.url, key=galaxy.bootstrap_key)
    user = boot.users.create_local_user("admin", "admin@example.org", "admin-password")
    return str(boot.users.get_or_create_user_apikey(user["id"]))


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)
