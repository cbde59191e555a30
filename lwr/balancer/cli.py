"""``lwr balancer``: the GBrowse balancer's command line over the balancer daemon.

``--conf balancer.ini`` runs it in the foreground (for systemd); ``--background`` detaches and
writes ``--pidfile``; ``--kill`` stops the daemon named by ``--pidfile``; ``--status`` says
running or stopped with the pool and the last decision, exiting 0 or 3 as an LSB init script's
``status`` does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import signal
import sys
from pathlib import Path
from typing import Any

from lwr.errors import ConfigurationError

log = logging.getLogger(__name__)

VERBOSITY = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}
#: LSB: "program is not running"
NOT_RUNNING = 3


def register(commands: Any) -> None:
    """Add ``balancer`` to the ``lwr`` command's subcommands."""
    parser = commands.add_parser("balancer", help="size a pool of LWR workers from a load table")
    parser.add_argument(
        "--conf", default="balancer.ini", help="balancer.ini (default: %(default)s)"
    )
    parser.add_argument("--background", action="store_true", help="detach and run as a daemon")
    parser.add_argument("--kill", action="store_true", help="stop the daemon named by --pidfile")
    parser.add_argument("--status", action="store_true", help="running or stopped, pool, decision")
    parser.add_argument("--pidfile", default="balancer.pid", help="default: %(default)s")
    parser.add_argument("--logfile", help="log here (default: stderr; balancer.log in background)")
    parser.add_argument("--user", help="when started as root, run as this user")
    parser.add_argument("--verbosity", type=int, choices=range(4), default=1, help="0-3")
    parser.add_argument("--access_key", help="EC2 access key (better: EC2_ACCESS_KEY)")
    parser.add_argument("--secret_key", help="EC2 secret key (better: EC2_SECRET_KEY)")
    parser.add_argument("--ssh_key", help="EC2 key pair that may log in to workers")
    parser.add_argument("--credentials-fd", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from lwr import daemon
    from lwr.balancer import credentials

    pidfile = Path(args.pidfile).resolve()
    if args.kill:
        return daemon.stop(pidfile, timeout=3600)
    if args.status:
        return status(args, pidfile)
    if args.access_key or args.secret_key:
        credentials.reexec_without(_argv_without_keys(args), args.access_key, args.secret_key)
    access = secret = None
    if args.credentials_fd is not None:
        access, secret = credentials.read_fd(args.credentials_fd)
    return _run(args, pidfile, access, secret)


def _run(args: argparse.Namespace, pidfile: Path, access: str | None, secret: str | None) -> int:
    from lwr import daemon
    from lwr.balancer import credentials
    from lwr.balancer.config import load_balancer_config
    from lwr.balancer.drivers.base import Driver
    from lwr.registry import BALANCER_DRIVERS, lookup

    config = load_balancer_config(Path(args.conf))
    driver_class: type[Driver] = lookup("balancer driver", BALANCER_DRIVERS, config.driver)
    keys = None
    if driver_class.needs_credentials():
        keys = credentials.resolve(access, secret)
    logfile = Path(args.logfile).resolve() if args.logfile else None
    if args.background:
        logfile = logfile or Path("balancer.log").resolve()
        _drop_privileges(args.user, [pidfile, logfile], config.state_directory)
        daemon.detach(pidfile, logfile)
    else:
        _drop_privileges(args.user, [pidfile], config.state_directory)
        _write_pidfile(pidfile)
    secrets = [keys.access_key, keys.secret_key] if keys else []
    _configure_logging(args.verbosity, logfile if not args.background else None, secrets)
    try:
        return _serve(config, driver_class(config, keys, args.ssh_key))
    finally:
        _remove_pidfile(pidfile)


def _remove_pidfile(pidfile: Path) -> None:
    """Remove the pid file on the way out. After ``--user`` the daemon may not write the pid
    file's directory (``/run`` is root's): ``--kill``, run by root, removes it then."""
    try:
        pidfile.unlink(missing_ok=True)
    except PermissionError:
        log.info("cannot remove %s (its directory is not ours); --kill removes it", pidfile)


def _serve(config: Any, driver: Any) -> int:
    from lwr.balancer.broker import PoolBroker
    from lwr.balancer.daemon import Balancer
    from lwr.balancer.metrics import BalancerMetrics

    metrics = BalancerMetrics()
    if config.metrics_port is not None:
        metrics.serve(config.metrics_host, config.metrics_port)
        log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)
    broker = PoolBroker(config.message_queue_url, config.queue_prefix).start()
    balancer = Balancer(config, driver, broker, metrics)

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        balancer.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "balancer %s (pid %d): pool of %s, %s driver, poll every %g min, signal %s",
        config.name,
        os.getpid(),
        config.queue_prefix,
        config.driver,
        config.poll_interval,
        config.signal,
    )
    balancer.start()
    try:
        balancer.run()
    finally:
        broker.stop()
    log.info("balancer stopped")
    return 0


def status(args: argparse.Namespace, pidfile: Path) -> int:
    """Print running/stopped, the pool and the last decision; 0 running, 3 stopped."""
    from lwr.balancer.config import load_balancer_config
    from lwr.daemon import _alive, _read_pid

    pid = _read_pid(pidfile)
    running = pid is not None and _alive(pid)
    state: dict[str, Any] = {}
    try:
        config = load_balancer_config(Path(args.conf))
        state = json.loads((config.state_directory / "status.json").read_text())
    except (ConfigurationError, OSError, ValueError):
        pass
    if not running:
        print("lwr balancer: stopped")
        return NOT_RUNNING
    print(f"lwr balancer: running (pid {pid})")
    if state:
        print(f"pool: {state.get('pool')} worker(s), {len(state.get('draining', []))} draining")
        print(f"last decision: {state.get('last_decision') or 'none yet'}")
    return 0


def _argv_without_keys(args: argparse.Namespace) -> list[str]:
    """The command line again from the parsed flags, minus the keys."""
    argv = ["--conf", args.conf, "--pidfile", args.pidfile, "--verbosity", str(args.verbosity)]
    for flag in ("logfile", "user", "ssh_key"):
        if getattr(args, flag):
            argv += [f"--{flag}", getattr(args, flag)]
    if args.background:
        argv.append("--background")
    return argv


def _write_pidfile(pidfile: Path) -> None:
    from lwr.daemon import _alive, _read_pid

    existing = _read_pid(pidfile)
    if existing and existing != os.getpid() and _alive(existing):
        raise ConfigurationError(f"already running as pid {existing} ({pidfile})")
    pidfile.write_text(f"{os.getpid()}\n")


def _drop_privileges(user: str | None, files: list[Path], state: Path) -> None:
    """As root with ``--user``: hand the pid/log ``files`` and the ``state`` directory to the
    user, then become it for good (there is no way back to root)."""
    if not user:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigurationError(f"--user: no such user {user!r}") from None
    if os.geteuid() != 0:
        if os.geteuid() != entry.pw_uid:
            raise ConfigurationError(f"--user {user} needs the balancer to be started as root")
        return
    state.mkdir(parents=True, exist_ok=True)
    for path in files:
        path.touch(exist_ok=True)
    for path in [*files, state, *state.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def _configure_logging(verbosity: int, logfile: Path | None, secrets: list[str]) -> None:
    from lwr.balancer.credentials import SecretFilter

    handler: logging.Handler = (
        logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity == 3 else logging.WARNING)
    logging.getLogger("lwr").setLevel(VERBOSITY[verbosity])
    for chatty in ("botocore", "boto3", "urllib3"):  # request dumps would carry key ids
        logging.getLogger(chatty).setLevel(logging.INFO if verbosity == 3 else logging.WARNING)
