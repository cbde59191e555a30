"""The file actions a rule can name, and what each one means for the server.

Galaxy's client decides, path by path, how a file travels: it uploads it itself (``transfer``),
copies it itself on a shared disk (``copy``), leaves it where it is (``none``, ``rewrite``), or
asks the server to move it (``remote_*``). The server only ever acts on the ``remote_*`` ones;
knowing the others lets it agree with the client on who does what, and refuse a name neither side
knows.

This module imports nothing but :mod:`lwr.errors`, so LWR's own client can use it.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class Staging(enum.Enum):
    """Who moves the file: the client, the server, or nobody."""

    LOCAL = "local"
    REMOTE = "remote"
    NONE = "none"


@dataclass(frozen=True)
class ActionSpec:
    """A known action: who stages, which extra rule keys it requires and which it accepts."""

    staging: Staging
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


_SSH_KEYS = ("ssh_key", "ssh_user", "ssh_host", "ssh_port")

#: every action ``pulsar.client`` 0.16 knows, by the name rules use
ACTION_SPECS: Mapping[str, ActionSpec] = {
    "none": ActionSpec(Staging.NONE),
    "rewrite": ActionSpec(Staging.NONE, required=("source_directory", "destination_directory")),
    "transfer": ActionSpec(Staging.LOCAL),
    "copy": ActionSpec(Staging.LOCAL),
    "remote_copy": ActionSpec(Staging.REMOTE),
    "remote_transfer": ActionSpec(Staging.REMOTE),
    "remote_transfer_tus": ActionSpec(Staging.REMOTE),
    "remote_object_store_copy": ActionSpec(Staging.REMOTE),
    "remote_rsync_transfer": ActionSpec(Staging.REMOTE, optional=_SSH_KEYS),
    "remote_scp_transfer": ActionSpec(Staging.REMOTE, optional=_SSH_KEYS),
}

#: actions whose files travel over HTTP against the client's ``files_endpoint``
URL_ACTIONS = frozenset({"remote_transfer", "remote_transfer_tus"})

#: file types whose directory the server re-creates, so "none" still means "copy" for them
#: (the job runs in the server's working directory, not the client's)
COPIED_EVEN_IF_NONE = frozenset(
    {"workdir", "jobdir", "metadata", "output_workdir", "output_metadata", "output_jobdir"}
)

#: what the client serializes for an ssh option it left unset
UNSET = "__UNSET__"


@dataclass(frozen=True)
class Action:
    """The action chosen for one path: its type plus the rule's extra parameters."""

    action_type: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> ActionSpec:
        return ACTION_SPECS[self.action_type]

    @property
    def staging(self) -> Staging:
        return self.spec.staging

    @property
    def is_remote(self) -> bool:
        """Whether the server (not the client) moves this file."""
        return self.staging is Staging.REMOTE

    def rewrite(self, path: str) -> str | None:
        """For ``rewrite``: the path under the destination directory, or None if unchanged."""
        if self.action_type != "rewrite":
            return None
        source = self.params["source_directory"].rstrip("/\\")
        destination = self.params["destination_directory"].rstrip("/\\")
        if path != source and not path.startswith(source + os.sep):
            return None
        return destination + path[len(source) :]
