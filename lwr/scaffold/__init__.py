"""``lwr config``: write a server directory as Pulsar's ``pulsar-config`` does, for LWR.

The directory gets Pulsar's layout — ``server.ini`` (web server and logging) pointing at
``app.yml`` (the application's options) — so a Pulsar admin finds what they know, and the same
files serve through ``lwr serve`` and ``paster serve server.ini``. Unlike
``pulsar-config`` the ``server.ini`` names LWR's entry points (``use = egg:lwr``), because
PasteDeploy cannot load an ini without them. A fresh ``private_token`` is generated with
:mod:`secrets` and ``app.yml``, which holds it, is readable by its owner only. The matching Galaxy
``job_conf.yml`` snippet is printed, so the two ends agree from the start.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from lwr.errors import ConfigurationError
from lwr.scaffold import templates

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672//"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``lwr config`` (spelled as pulsar-config's, with dashes accepted too)."""
    parser.add_argument("--directory", default=".", help="where to write (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=8913, help="port to listen on")
    parser.add_argument(
        "--private-token", "--private_token", dest="private_token",
        help="the secret clients send (default: a new random one)",
    )  # fmt: skip
    parser.add_argument(
        "--mq", action="store_true", help="Galaxy reaches LWR over AMQP; no HTTP listener"
    )
    parser.add_argument("--web", action="store_true", help="with --mq: serve HTTP as well")
    parser.add_argument("--amqp-url", "--amqp_url", dest="amqp_url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--amqp-key-prefix", "--amqp_key_prefix", dest="amqp_key_prefix")
    parser.add_argument(
        "--libdrmaa-path", "--libdrmaa_path", dest="libdrmaa_path",
        help="submit through DRMAA: the path of libdrmaa.so (goes into local_env.sh)",
    )  # fmt: skip
    parser.add_argument("--systemd", action="store_true", help="write a systemd unit, lwr.service")
    parser.add_argument(
        "--supervisor", action="store_true", help="write a supervisord program, supervisor.conf"
    )
    parser.add_argument(
        "--install", action="store_true", help="accepted for pulsar-config's sake: nothing to do"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")


@dataclass(frozen=True)
class Site:
    """The choices of one ``lwr config`` run, with the directory made absolute."""

    directory: Path
    host: str
    port: int
    private_token: str
    mq: bool
    web: bool
    amqp_url: str
    amqp_key_prefix: str | None
    libdrmaa_path: str | None

    @property
    def url(self) -> str:
        host = socket.getfqdn() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/"


def main(args: argparse.Namespace) -> int:
    """Write the directory, then print how to start it and Galaxy's side."""
    if args.web and not args.mq:
        raise ConfigurationError("--web only means something with --mq (HTTP is the default)")
    site = Site(
        directory=Path(args.directory).resolve(),
        host=args.host,
        port=args.port,
        private_token=args.private_token or secrets.token_urlsafe(32),
        mq=args.mq,
        web=args.web,
        amqp_url=args.amqp_url,
        amqp_key_prefix=args.amqp_key_prefix,
        libdrmaa_path=args.libdrmaa_path,
    )
    files = render(site, systemd=args.systemd, supervisor=args.supervisor)
    existing = sorted(name for name in files if (site.directory / name).exists())
    if existing and not args.force:
        raise ConfigurationError(
            f"{site.directory} already has {', '.join(existing)}; use --force to overwrite"
        )
    write(site.directory, files)
    print(summary(site, sorted(files), args.install, args.directory))
    return 0


def render(site: Site, systemd: bool, supervisor: bool) -> dict[str, str]:
    """Every file's text, keyed by its name in the directory."""
    files = {
        "server.ini": server_ini(site),
        "app.yml": app_yml(site),
        "local_env.sh": templates.LOCAL_ENV.substitute(
            libdrmaa_line=(
                f"export DRMAA_LIBRARY_PATH={shlex.quote(site.libdrmaa_path)}"
                if site.libdrmaa_path
                else "#export DRMAA_LIBRARY_PATH=/path/to/libdrmaa.so"
            )
        ),
    }
    mapping = {"directory": str(site.directory), "user": getpass.getuser()}
    if systemd:
        files["lwr.service"] = templates.SYSTEMD_UNIT.substitute(
            mapping, command=start_command(site.directory).replace("%", "%%")
        )
    if supervisor:
        files["supervisor.conf"] = templates.SUPERVISOR_PROGRAM.substitute(
            mapping, command=start_command(site.directory).replace("%", "%%")
        )
    return files


def server_ini(site: Site) -> str:
    if site.mq and not site.web:
        return templates.SERVER_INI.substitute(runner="webless", server_options="")
    options = templates.HTTP_SERVER_OPTIONS.substitute(host=site.host, port=site.port)
    return templates.SERVER_INI.substitute(runner="main", server_options=options)


def app_yml(site: Site) -> str:
    mq_options = ""
    if site.mq:
        mq_options = templates.MQ_OPTIONS.substitute(
            amqp_url=site.amqp_url, key_prefix_line=_key_prefix_line(site, "")
        )
    return templates.APP_YML.substitute(
        private_token=json.dumps(site.private_token),
        mq_options=mq_options,
        manager_type="queued_drmaa" if site.libdrmaa_path else "queued_python",
    )


def job_conf(site: Site) -> str:
    """Galaxy's ``job_conf.yml`` for this server (REST, or MQ with its jobs directory)."""
    if site.mq:
        return templates.JOB_CONF_MQ.substitute(
            amqp_url=json.dumps(site.amqp_url),
            key_prefix_line=_key_prefix_line(site, "    "),
            jobs_directory=json.dumps(str(jobs_directory(site))),
        )
    return templates.JOB_CONF_REST.substitute(
        url=json.dumps(site.url), private_token=json.dumps(site.private_token)
    )


def jobs_directory(site: Site) -> Path:
    """Where the default manager's job directories are (an MQ destination's ``jobs_directory``).

    This follows Pulsar's layout (:func:`lwr.managers.layout.staging_root`); the integration test
    runs a job in it.
    """
    from lwr.config import DEFAULT_MANAGER
    from lwr.managers.layout import staging_root

    return staging_root(site.directory / "files" / "staging", DEFAULT_MANAGER, None)


def start_command(directory: Path) -> str:
    """One shell command that sources local_env.sh and serves ``directory``'s server.ini."""
    lwr = Path(sys.executable).parent / "lwr"
    program = shlex.quote(str(lwr)) if lwr.exists() else shutil.which("lwr") or "lwr"
    ini = shlex.quote(str(directory / "server.ini"))
    script = f"if [ -f ./local_env.sh ]; then . ./local_env.sh; fi; exec {program} serve {ini}"
    return f"/bin/sh -c {json.dumps(script)}"


def write(directory: Path, files: dict[str, str]) -> None:
    """Write the files; app.yml (the token) readable by its owner only, from its creation on."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dependencies").mkdir(exist_ok=True)
    for name, text in files.items():
        path = directory / name
        mode = 0o600 if name == "app.yml" else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        if hasattr(os, "fchmod"):  # an existing file (--force) keeps its old mode otherwise
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    (directory / "local_env.sh").chmod(0o755)


def summary(site: Site, names: list[str], install: bool, shown_directory: str) -> str:
    """What was written, how to start the server, and Galaxy's configuration."""
    lines = [f"Wrote {', '.join(names)} into {site.directory}."]
    if install:
        lines.append(f"--install: nothing to install, LWR is installed in {sys.prefix}.")
    if site.mq and site.amqp_url == DEFAULT_AMQP_URL:
        lines.append("message_queue_url is RabbitMQ's default guest account: change it in app.yml.")
    if site.host == "127.0.0.1" and not (site.mq and not site.web):
        lines.append("Listening on 127.0.0.1 only: use --host 0.0.0.0 for remote clients.")
    lines += [
        "",
        f"Start LWR by running, from directory {shown_directory}:",
        "    . ./local_env.sh && lwr serve" if site.libdrmaa_path else "    lwr serve",
        "",
        "Galaxy's job_conf.yml (merge into yours):",
        "",
        job_conf(site),
    ]
    return "\n".join(lines)


def _key_prefix_line(site: Site, indent: str) -> str:
    if not site.amqp_key_prefix:
        return ""
    return f"{indent}amqp_key_prefix: {json.dumps(site.amqp_key_prefix)}\n"
