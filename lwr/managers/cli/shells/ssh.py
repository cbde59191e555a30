"""Run scheduler commands on a submit host through the system's OpenSSH client.

Using the ``ssh`` binary rather than a Python SSH library means no extra dependency, and the
operator's usual tools (``ssh -v``, ``known_hosts``, ``~/.ssh/config``) explain any failure. The
remote side still parses the command with a shell, so the argv is quoted with :func:`shlex.join`:
an argument such as ``--comment=a b;rm -rf ~`` arrives as one word, never as a second command.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence

from lwr.errors import ConfigurationError
from lwr.managers.cli.shells.base import CommandResult, Shell, run_with_deadline

log = logging.getLogger(__name__)

#: accepted spellings of ``shell_strict_host_key_checking`` -> OpenSSH's value
_HOST_KEY_POLICIES: Mapping[str, str] = {
    "true": "yes",
    "yes": "yes",
    "1": "yes",
    "on": "yes",
    "accept-new": "accept-new",
    "false": "no",
    "no": "no",
    "0": "no",
    "off": "no",
}

#: exit status of the ssh client itself failing (connection refused, host key mismatch, ...)
SSH_FAILURE = 255


class SecureShell(Shell):
    """Runs commands as ``ssh [options] -- host 'quoted command'``, never asking for a password.

    Options (the manager's ``shell_*`` options without the prefix): ``hostname`` (required),
    ``username``, ``private_key``, ``port``, ``strict_host_key_checking`` (default true; also
    ``accept-new`` or false), ``known_hosts`` (a known_hosts file to use instead of the user's)
    and ``connect_timeout`` (seconds, default 10).
    """

    accepted_options = frozenset(
        {
            "hostname",
            "username",
            "private_key",
            "port",
            "strict_host_key_checking",
            "known_hosts",
            "connect_timeout",
        }
    )

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        opts = self.options
        self.hostname = opts.get("hostname", "").strip()
        if not self.hostname:
            raise ConfigurationError("shell_plugin = ssh needs shell_hostname")
        self.username = opts.get("username", "").strip() or None
        for label, value in (("shell_hostname", self.hostname), ("shell_username", self.username)):
            # a leading dash would be read by ssh as an option; whitespace is never valid here
            if value is not None and (value.startswith("-") or any(c.isspace() for c in value)):
                raise ConfigurationError(f"{label} {value!r} is not a valid name")
        self.private_key = opts.get("private_key", "").strip() or None
        self.known_hosts = opts.get("known_hosts", "").strip() or None
        self.port = _int_option(opts, "port", None, 1, 65535)
        self.connect_timeout = _int_option(opts, "connect_timeout", 10, 1, 3600)
        policy = opts.get("strict_host_key_checking", "true").strip().lower()
        if policy not in _HOST_KEY_POLICIES:
            raise ConfigurationError(
                f"shell_strict_host_key_checking must be true, false or accept-new, not {policy!r}"
            )
        self.host_key_policy = _HOST_KEY_POLICIES[policy]
        if self.host_key_policy == "no":
            log.warning(
                "ssh to %s will not verify the host key: anybody on the path "
                "can pose as the submit host",
                self.hostname,
            )

    def ssh_argv(self, argv: Sequence[str]) -> list[str]:
        """The local ``ssh`` command line that runs ``argv`` on the submit host."""
        if not argv:
            raise ValueError("empty command")
        command = [
            "ssh",
            "-T",  # no terminal: plain pipes, no "Pseudo-terminal will not be allocated"
            "-o", "BatchMode=yes",  # fail rather than prompt for a password or a host key
            "-o", f"StrictHostKeyChecking={self.host_key_policy}",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "LogLevel=ERROR",  # keep ssh's banners out of the scheduler's stderr
        ]  # fmt: skip
        if self.known_hosts:
            command += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.private_key:
            command += ["-i", self.private_key, "-o", "IdentitiesOnly=yes"]
        if self.port is not None:
            command += ["-p", str(self.port)]
        if self.username:
            command += ["-l", self.username]
        command += ["--", self.hostname, shlex.join(argv)]
        return command

    def execute(
        self, argv: Sequence[str], timeout: float, input: str | None = None
    ) -> CommandResult:
        """Run ``argv`` on the submit host; the result names the remote command, not ssh."""
        result = run_with_deadline(self.ssh_argv(argv), timeout, input=input, shown_argv=argv)
        if result.returncode == SSH_FAILURE:
            log.warning("ssh to %s failed: %s", self.describe(), result.stderr.strip())
        return result

    def describe(self) -> str:
        """``user@host:port`` as far as configured."""
        where = f"{self.username}@{self.hostname}" if self.username else self.hostname
        return f"{where}:{self.port}" if self.port is not None else where


def _int_option(
    options: Mapping[str, str], key: str, default: int | None, low: int, high: int
) -> int | None:
    """Read an integer option within [low, high], or raise ConfigurationError naming it."""
    raw = options.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"shell_{key} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"shell_{key} must be between {low} and {high}, not {value}")
    return value
