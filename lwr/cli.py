"""The ``lwr`` command (also ``python -m lwr``): serve without a shell script, on any OS."""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
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
        "config", nargs="?", default="server.ini", help="PasteDeploy ini (default: server.ini)"
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
    from lwr.client import commands as client_commands

    client_commands.register(commands)  # submit, status, cancel, list, clean
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
    from lwr import daemon

    if (args.daemon or args.stop_daemon) and daemon.IS_WINDOWS:
        print(daemon.WINDOWS_MESSAGE, file=sys.stderr)
        return 2
    if args.stop_daemon:
        return daemon.stop(Path(args.pid_file))
    config = Path(args.config).resolve()
    if not config.exists():
        sample = Path("server.ini.sample")
        if config.name == "server.ini" and sample.exists():
            config.write_bytes(sample.read_bytes())
            jm, jm_sample = Path("job_managers.ini"), Path("job_managers.ini.sample")
            if not jm.exists() and jm_sample.exists():
                jm.write_bytes(jm_sample.read_bytes())
        else:
            print(f"lwr: {config} does not exist", file=sys.stderr)
            return 1
    if args.daemon:
        daemon.detach(Path(args.pid_file).resolve(), Path(args.log_file).resolve())
    _configure_logging(config)
    from paste.deploy import loadapp, loadserver

    uri = f"config:{config}"
    app = loadapp(uri)
    server = loadserver(uri)
    server(app)
    return 0


def _configure_logging(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    if "[loggers]" in text:
        logging.config.fileConfig(
            config,
            defaults={"here": str(config.parent), "__file__": str(config)},
            disable_existing_loggers=False,
        )
    else:
        logging.basicConfig(level=os.environ.get("LWR_LOG_LEVEL", "INFO"))
