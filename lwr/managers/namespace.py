"""Per-user job namespaces: how a user's job id is stored, and where its directory lives.

The admin token (``private_token``, Galaxy's) addresses jobs by the client's own id, stored as it
is and laid out as Pulsar does (``<manager root>/<job_id>``). A service user's job is stored as
``<user>~<job_id>``: ``~`` is in neither a job id (:data:`~lwr.managers.directory.JOB_ID_PATTERN`)
nor a user name, so two users sending the same id get two records, and no user id can ever equal an
admin one. Its directory is ``<manager root>/.users/<user>/<job_id>``: a job id cannot start with
``.``, so ``.users`` never holds an admin job, and manager names starting with ``.`` are refused
(:func:`check_manager_name`), so it is no manager's directory either. The mapping is a pure
function of the stored id, so it survives restarts with nothing else to remember.
"""

from __future__ import annotations

import re
from pathlib import Path

from lwr.errors import ConfigurationError, InvalidRequestError
from lwr.managers.directory import check_job_id

SEPARATOR = "~"
#: the directory under a manager's root holding one directory per user
USERS_DIRECTORY = ".users"
#: a service user's name: short, lower case, safe in paths, URLs and log lines
#: (``\Z``, not ``$``, which also matches before a final newline: ``"alice\n"`` is no name)
USER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")


def check_user_name(name: str) -> str:
    """Refuse a user name that could not name one directory (or would hold the separator)."""
    if not isinstance(name, str) or not USER_NAME_PATTERN.match(name):
        raise InvalidRequestError(
            f"invalid user name {name!r}: 1-32 of a-z, 0-9, '_' and '-', starting with a letter"
        )
    return name


def scoped(owner: str | None, job_id: str) -> str:
    """The stored id of the client's ``job_id`` for ``owner`` (None: the admin namespace)."""
    check_job_id(job_id)
    if owner is None:
        return job_id
    return f"{check_user_name(owner)}{SEPARATOR}{job_id}"


def split(stored: str) -> tuple[str | None, str]:
    """``(owner, client job id)`` of a stored id; checks both parts."""
    owner, sep, job_id = stored.rpartition(SEPARATOR)
    if not sep:
        return None, check_job_id(stored)
    return check_user_name(owner), check_job_id(job_id)


def checked(stored: str) -> str:
    """``stored`` itself, once both its parts are checked."""
    split(stored)
    return stored


def owner_of(stored: str) -> str | None:
    """The user owning a stored id, None for the admin's jobs (unchecked: for display)."""
    owner, sep, _ = stored.rpartition(SEPARATOR)
    return owner if sep else None


def client_id(stored: str) -> str:
    """The id the client knows its job by (unchecked: for answers and messages)."""
    return stored.rpartition(SEPARATOR)[2]


def job_path(manager_root: Path, stored: str) -> Path:
    """The job's directory: Pulsar's ``<root>/<id>`` for the admin, per user beside it."""
    owner, job_id = split(stored)
    if owner is None:
        return manager_root / job_id
    return manager_root / USERS_DIRECTORY / owner / job_id


def user_directories(manager_root: Path) -> list[Path]:
    """Every user's directory under ``manager_root`` (for crash clean-up at start)."""
    base = manager_root / USERS_DIRECTORY
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def check_manager_name(name: str) -> None:
    """A manager named like the users' directory could share it: refuse such names at start."""
    if name.startswith(".") or SEPARATOR in name or "/" in name:
        raise ConfigurationError(
            f"job manager name {name!r}: must not start with '.' nor hold '~' or '/'"
        )
