"""Cloud credentials for the balancer, kept out of ``ps`` and out of the logs.

Flags are the GBrowse balancer's interface, but a flag's value is in ``/proc/<pid>/cmdline`` for
every local user to read. So when ``--access_key``/``--secret_key`` are given, the command
re-executes itself at once without them and hands them over through an inherited pipe (a file
descriptor number is all the new command line shows). The environment (``EC2_ACCESS_KEY`` /
``EC2_SECRET_KEY``, or the standard ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``) is read
as is; it is only visible to the same user and root. Missing both and on a terminal, the keys
are prompted for without echo. A logging filter masks the values wherever they could slip into a
log record.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from lwr.balancer.drivers.base import Credentials
from lwr.errors import ConfigurationError

FD_FLAG = "--credentials-fd"


def reexec_without(argv: Sequence[str], access_key: str | None, secret_key: str | None) -> None:
    """Replace this process by the same command minus the keys, which travel through a pipe."""
    body = json.dumps({"access_key": access_key, "secret_key": secret_key}).encode()
    reader, writer = os.pipe()
    os.write(writer, body)  # far below a pipe's capacity: never blocks
    os.close(writer)
    os.set_inheritable(reader, True)
    command = [sys.executable, "-m", "lwr", "balancer", *argv, FD_FLAG, str(reader)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def read_fd(fd: int) -> tuple[str | None, str | None]:
    """The keys a previous ``reexec_without`` sent through ``fd``."""
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    data = json.loads(b"".join(chunks) or b"{}")
    return data.get("access_key"), data.get("secret_key")


def resolve(
    access_key: str | None,
    secret_key: str | None,
    environ: Mapping[str, str] = os.environ,
    interactive: bool | None = None,
) -> Credentials | None:
    """The keys from the flags (already moved off the command line), else the environment,
    else a prompt on a terminal; None leaves boto3 its own chain (profile, instance role)."""
    session = environ.get("AWS_SESSION_TOKEN")
    access_key = access_key or environ.get("EC2_ACCESS_KEY") or environ.get("AWS_ACCESS_KEY_ID")
    secret_key = secret_key or environ.get("EC2_SECRET_KEY") or environ.get("AWS_SECRET_ACCESS_KEY")
    if interactive is None:
        interactive = sys.stdin.isatty()
    if (not access_key or not secret_key) and interactive:
        access_key = access_key or input("EC2 access key: ").strip()
        secret_key = secret_key or getpass.getpass("EC2 secret key: ").strip()
    if bool(access_key) != bool(secret_key):
        raise ConfigurationError("an EC2 access key needs its secret key, and the other way round")
    if not access_key or not secret_key:
        return None
    return Credentials(access_key, secret_key, session)


class SecretFilter(logging.Filter):
    """Masks the credentials in every log record, whatever library wrote it."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        masked = text
        for secret in self.secrets:
            masked = masked.replace(secret, "***")
        if masked != text:
            record.msg, record.args = masked, None
        return True
