"""The ``lwr`` command (also ``python -m lwr``): serve without a shell script, on any OS."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lwr import __version__
from lwr.errors import LwrError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lwr", description="LWR, the Lightweight Runner")
    parser.add_argument("--version", action="version", version=f"lwr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the server from server.ini")
    serve.add_argument(
        "config",
        nargs="?",
        default="server.ini",
        help="PasteDeploy ini, or a Pulsar app.yml (default: server.ini, else app.yml)",
    )
    serve.add_argument(
        "--app-conf-path",
        "--app_conf_path",
        dest="app_conf_path",
        help="a Pulsar-style app.yml (default: app_config in the ini, or app.yml beside it)",
    )
    serve.add_argument(
        "--daemon",
        action="store_true",
        help="detach and serve in the background (POSIX; on Windows run a service)",
    )
    serve.add_argument("--stop-daemon", action="store_true", help="stop the background server")
    serve.add_argument("--pid-file", default="paster.pid")
    serve.add_argument("--log-file", default="paster.log")
    serve.set_defaults(func=_serve)
    config = commands.add_parser(
        "config", help="write a server directory (server.ini, app.yml, ...) as pulsar-config does"
    )
    from lwr import scaffold

    scaffold.add_arguments(config)
    config.set_defaults(func=scaffold.main)
    from lwr.client import commands as client_commands

    client_commands.register(commands)  # submit, status, cancel, list, clean
    from lwr.service import admin

    admin.register(commands)  # users add|list|show|set-plan|revoke
    from lwr.balancer import cli as balancer_cli

    balancer_cli.register(commands)  # balancer (docs/elastic.md)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LwrError as exc:
        print(f"lwr: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lwr: interrupted", file=sys.stderr)
        return 130


def _serve(args: argparse.Namespace) -> int:
    from lwr import daemon, serve

    if (args.daemon or args.stop_daemon) and daemon.IS_WINDOWS:
        print(daemon.WINDOWS_MESSAGE, file=sys.stderr)
        return 2
    if args.stop_daemon:
        return daemon.stop(Path(args.pid_file))
    config = Path(args.config)
    if not config.exists() and not args.app_conf_path and not (config.parent / "app.yml").exists():
        sample = Path("server.ini.sample")
        if config.name == "server.ini" and sample.exists():
            config.write_bytes(sample.read_bytes())
            jm, jm_sample = Path("job_managers.ini"), Path("job_managers.ini.sample")
            if not jm.exists() and jm_sample.exists():
                jm.write_bytes(jm_sample.read_bytes())
    layout = serve.find_layout(config, args.app_conf_path)
    if args.daemon:
        daemon.detach(Path(args.pid_file).resolve(), Path(args.log_file).resolve())
    serve.configure_logging(layout)
    serve.serve(layout)
    return 0
