"""``remote_scp_transfer`` and ``remote_rsync_transfer``: files moved over ssh to the client's host.

Galaxy's client names the host, user, port and private key (per rule, or once for the
destination); LWR runs the system's ``scp`` or ``rsync`` with OpenSSH underneath, as argv lists
(never through a local shell), so the operator's usual tools explain a failure and no Python SSH
library is needed.

- **The key** arrives as text with the job. It is written, mode 0600, into a private temporary
  directory (mode 0700) for the one command that needs it and removed right after, whatever happens.
- **The host key** is checked as the admin configured (``staging_ssh_strict_host_key_checking``,
  default ``true``: the client's host key must already be in ``staging_ssh_known_hosts``, else in
  the server user's ``~/.ssh/known_hosts``). Pulsar turns the check off; LWR does not by default,
  because whoever could pose as the client's host would read every input and forge every output.
- **Remote paths** are the client's absolute paths. ``scp`` (OpenSSH 9, SFTP protocol) and
  ``rsync --protect-args`` pass them to the remote side without a shell; the one remote command
  LWR runs itself (``mkdir -p`` of an output's directory) quotes its argument (:func:`shlex.quote`).
- **Failures** keep what ``ssh``/``scp``/``rsync`` printed. Connection problems are retried with
  the staging retry policy; refusals (wrong key, unknown host key, no such file) are not, since
  another attempt cannot fix them.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lwr.errors import StagingError
from lwr.staging.movers import ClientFile, Mover, discard

log = logging.getLogger(__name__)

#: how often ssh probes a silent connection; the staging timeout decides how many probes may fail
_ALIVE_INTERVAL = 5
#: stderr lines that another attempt cannot change (case-insensitive)
_PERMANENT = re.compile(
    r"permission denied|host key verification failed|no such file|not a regular file|"
    r"is a directory|could not resolve hostname|invalid format|bad permissions|"
    r"load key .*: (invalid|error)|unknown option|no matching host key",
    re.IGNORECASE,
)


#: what a host name or address may look like: no option (leading dash), no user, path or space
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\$?")


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to log in: validated from the action's ``ssh_*`` options."""

    host: str
    user: str | None
    port: int | None
    key: str

    @classmethod
    def of(cls, file: ClientFile, action_type: str) -> SshTarget:
        host, user, port, key = (
            file.param(k) for k in ("ssh_host", "ssh_user", "ssh_port", "ssh_key")
        )
        if not host:
            raise StagingError(f"{action_type} needs ssh_host (the client's host), none was given")
        if not key:
            raise StagingError(f"{action_type} needs ssh_key (a private key), none was given")
        for label, value, pattern in (("ssh_host", host, _HOST), ("ssh_user", user, _USER)):
            if value is not None and not pattern.fullmatch(str(value)):
                raise StagingError(f"{action_type}: {label} {str(value)!r} is not a valid name")
        number = None
        if port is not None:
            try:
                number = int(str(port))
            except ValueError:
                number = -1
            if not 1 <= number <= 65535:
                raise StagingError(f"{action_type}: ssh_port {port!r} is not a port number")
        return cls(str(host), str(user) if user else None, number, str(key))

    def remote(self, path: str) -> str:
        """``[user@]host:path`` as scp and rsync name a remote file (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{path}" if self.user else f"{host}:{path}"

    def describe(self) -> str:
        where = f"{self.user}@{self.host}" if self.user else self.host
        return f"{where}:{self.port}" if self.port is not None else where


class _SshMover(Mover):
    """What scp and rsync share: the key file, the ssh options, the retries, the error text."""

    #: the program that moves the bytes
    program = ""

    def fetch(self, file: ClientFile, target: Path) -> None:
        ssh = SshTarget.of(file, self.action_type)
        remote = _absolute(file.path, self.action_type)
        fd, tmp_name = tempfile.mkstemp(prefix=".lwr-ssh-", dir=target.parent)
        os.close(fd)
        try:
            with private_key(ssh.key) as key:
                self._run(self._copy_argv(ssh, key, ssh.remote(remote), tmp_name), ssh, file.path)
            os.replace(tmp_name, target)
        finally:
            discard(tmp_name)
        log.info("fetched %s from %s over %s", target, ssh.remote(remote), self.program)

    def send(self, source: Path, file: ClientFile) -> None:
        ssh = SshTarget.of(file, self.action_type)
        remote = _absolute(file.path, self.action_type)
        with private_key(ssh.key) as key:
            directory = os.path.dirname(remote) or "/"
            mkdir = f"mkdir -p -- {shlex.quote(directory)}"
            self._run([*self.ssh_argv(ssh, key), "--", ssh.host, mkdir], ssh, file.path)
            self._run(self._copy_argv(ssh, key, str(source), ssh.remote(remote)), ssh, file.path)
        log.info("sent %s to %s over %s", source, ssh.remote(remote), self.program)

    def ssh_options(self, ssh: SshTarget, key: str) -> list[str]:
        """The ``-o`` options every ssh connection gets (shared by ssh, scp and rsync's ssh)."""
        timeout = max(1, math.ceil(self.settings.policy.timeout))
        options = [
            "-o", "BatchMode=yes",  # never prompt for a password or a passphrase
            "-o", f"StrictHostKeyChecking={self.settings.ssh_host_key_policy}",
            "-o", f"ConnectTimeout={timeout}",
            "-o", f"ServerAliveInterval={_ALIVE_INTERVAL}",
            "-o", f"ServerAliveCountMax={max(1, math.ceil(timeout / _ALIVE_INTERVAL))}",
            "-o", "IdentitiesOnly=yes",  # this key only, not the agent's or ~/.ssh's
            "-o", "LogLevel=ERROR",
            "-i", key,
        ]  # fmt: skip
        if self.settings.ssh_known_hosts is not None:
            options += ["-o", f"UserKnownHostsFile={self.settings.ssh_known_hosts}"]
        return options

    def ssh_argv(self, ssh: SshTarget, key: str) -> list[str]:
        """``ssh`` with the options, port and user (the host and command follow)."""
        argv = ["ssh", "-T", *self.ssh_options(ssh, key)]
        if ssh.port is not None:
            argv += ["-p", str(ssh.port)]
        if ssh.user:
            argv += ["-l", ssh.user]
        return argv

    def _copy_argv(self, ssh: SshTarget, key: str, source: str, target: str) -> list[str]:
        raise NotImplementedError

    def _run(self, argv: Sequence[str], ssh: SshTarget, path: str) -> None:
        """Run ``argv`` with the staging retry policy; a StagingError says what it printed."""
        run_with_retries(argv, self.settings.policy.delays(), self._describe(argv, ssh, path))

    def _describe(self, argv: Sequence[str], ssh: SshTarget, path: str) -> str:
        return f"{argv[0]} of {path} with {ssh.describe()}"


class ScpMover(_SshMover):
    """``remote_scp_transfer``: ``scp`` (SFTP protocol) to and from the client's host."""

    action_type = "remote_scp_transfer"
    program = "scp"

    def _copy_argv(self, ssh: SshTarget, key: str, source: str, target: str) -> list[str]:
        argv = ["scp", "-B", *self.ssh_options(ssh, key)]
        if ssh.port is not None:
            argv += ["-P", str(ssh.port)]
        return [*argv, "--", source, target]


class RsyncMover(_SshMover):
    """``remote_rsync_transfer``: ``rsync`` over ssh (which never leaves a half-written file)."""

    action_type = "remote_rsync_transfer"
    program = "rsync"

    def _copy_argv(self, ssh: SshTarget, key: str, source: str, target: str) -> list[str]:
        # rsync splits -e into words itself (no shell), so each word is quoted for that split
        remote_shell = shlex.join(self.ssh_argv(ssh, key))
        timeout = max(1, math.ceil(self.settings.policy.timeout))
        return [
            "rsync", "--protect-args", f"--timeout={timeout}", "-e", remote_shell,
            "--", source, target,
        ]  # fmt: skip


@contextmanager
def private_key(text: str) -> Iterator[str]:
    """The key written to a file only its owner can read, for as long as the block runs."""
    directory = tempfile.mkdtemp(prefix="lwr-ssh-key-")  # mode 0700
    path = os.path.join(directory, "key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            body = text.replace("\r\n", "\n").strip("\n")
            handle.write(body + "\n")  # OpenSSH refuses a key without its final newline
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_with_retries(
    argv: Sequence[str],
    delays: Iterator[float],
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run ``argv`` until it succeeds, retrying transient failures after each of ``delays``."""
    tries = 0
    while True:
        tries += 1
        try:
            done = subprocess.run(
                list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise StagingError(f"{what} failed: cannot run {argv[0]}: {exc}") from None
        if done.returncode == 0:
            return
        said = _last_lines(done.stderr or done.stdout) or "(no message)"
        cause = f"{argv[0]} exited with code {done.returncode}: {said}"
        if _PERMANENT.search(said):
            raise StagingError(f"{what} failed: {cause}")
        wait = next(delays, None)
        if wait is None:
            raise StagingError(f"{what} failed after {tries} attempt(s): {cause}")
        log.warning("%s failed (%s); retry %d in %.1fs", what, cause, tries, wait)
        sleep(wait)


def _absolute(path: str, action_type: str) -> str:
    if not path.startswith("/"):
        raise StagingError(f"{action_type}: {path!r} is not an absolute path on the client's host")
    return path


def _last_lines(text: str, limit: int = 600) -> str:
    """The end of a program's message, on one line, as much as an error reason may hold."""
    joined = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return joined if len(joined) <= limit else "…" + joined[-limit:]
