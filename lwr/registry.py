"""Plugin tables: alias -> "module:Class", imported only when looked up.

One mechanism for every family (job managers, CLI shells, CLI schedulers, staging actions,
``user_auth`` plugins), so a host without ``drmaa`` still starts as long as no DRMAA manager is
configured, and a configured plugin whose dependency is missing fails at start-up naming what to
install. Classes are never registered by ``__name__``: renaming a class must not break anybody's
configuration.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping

from lwr.errors import ConfigurationError

MANAGERS: Mapping[str, str] = {
    "queued_python": "lwr.managers.local:QueuedPythonManager",
    "unqueued": "lwr.managers.local:UnqueuedManager",
    "queued_drmaa": "lwr.managers.drmaa:DrmaaManager",
    "queued_external_drmaa": "lwr.managers.drmaa:ExternalDrmaaManager",
    "queued_condor": "lwr.managers.condor:CondorManager",
    "queued_cli": "lwr.managers.cli.manager:CliManager",
}

SHELLS: Mapping[str, str] = {
    "local": "lwr.managers.cli.shells.local:LocalShell",
    "ssh": "lwr.managers.cli.shells.ssh:SecureShell",
    # names of the original LWR sample configuration
    "LocalShell": "lwr.managers.cli.shells.local:LocalShell",
    "SecureShell": "lwr.managers.cli.shells.ssh:SecureShell",
}

SCHEDULERS: Mapping[str, str] = {
    "slurm": "lwr.managers.cli.schedulers.slurm:Slurm",
    "torque": "lwr.managers.cli.schedulers.torque:Torque",
    "pbs": "lwr.managers.cli.schedulers.torque:Pbs",
    # names of the original LWR sample configuration
    "Slurm": "lwr.managers.cli.schedulers.slurm:Slurm",
    "Torque": "lwr.managers.cli.schedulers.torque:Torque",
    "PBS": "lwr.managers.cli.schedulers.torque:Pbs",
}

#: ``user_auth`` plugins under Pulsar's type names (its ``user_auth:`` configuration works as is)
AUTHENTICATION: Mapping[str, str] = {
    "oidc": "lwr.auth.oidc:OidcAuthentication",
    "allow_all": "lwr.auth.simple:AllowAllAuthentication",
}

AUTHORIZATION: Mapping[str, str] = {
    "userlist": "lwr.auth.simple:UserListAuthorization",
    "allow_all": "lwr.auth.simple:AllowAllAuthorization",
}

#: the server's half of each ``remote_*`` file action (lwr.staging.movers.Mover subclasses)
STAGING_ACTIONS: Mapping[str, str] = {
    "remote_transfer": "lwr.staging.movers:HttpMover",
    "remote_copy": "lwr.staging.movers:CopyMover",
    "remote_transfer_tus": "lwr.staging.tus:TusMover",
    "remote_scp_transfer": "lwr.staging.ssh:ScpMover",
    "remote_rsync_transfer": "lwr.staging.ssh:RsyncMover",
    "remote_object_store_copy": "lwr.staging.objectstore:ObjectStoreMover",
}

#: where lwr.service.retention puts archived results (``retention_store``)
ARCHIVE_STORES: Mapping[str, str] = {
    "directory": "lwr.service.retention.stores.directory:DirectoryStore",
    "s3": "lwr.service.retention.stores.s3:S3Store",
}

#: extra hints for a missing dependency, keyed by the top-level module that failed to import
INSTALL_HINTS: Mapping[str, str] = {
    "drmaa": "pip install drmaa (and set DRMAA_LIBRARY_PATH in local_env.sh)",
    "kombu": "pip install kombu",
    "jwt": "pip install PyJWT",
    "galaxy": "pip install 'lwr[objectstore]' (the galaxy-objectstore package)",
    "boto3": "pip install 'lwr[balancer]' (boto3, for the ec2 balancer driver)",
    "prometheus_client": "pip install 'lwr[balancer]'",
}


def lookup(family: str, table: Mapping[str, str], alias: str) -> type:
    """Import and return the class registered as ``alias`` in ``table``.

    Raises ConfigurationError with a "did you mean" suggestion for an unknown alias, and with the
    package to install when the plugin's module cannot be imported.
    """
    target = table.get(alias)
    if target is None:
        close = difflib.get_close_matches(alias, list(table), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(table))
        raise ConfigurationError(f"unknown {family} {alias!r}{hint} (known: {known})")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "lwr":
            raise ConfigurationError(
                f"{family} {alias!r} is not available in this version of LWR ({exc})"
            ) from exc
        hint = INSTALL_HINTS.get(missing, f"pip install {missing}")
        raise ConfigurationError(
            f"{family} {alias!r} needs the Python module {missing!r}, which is not installed: "
            f"{hint}"
        ) from exc
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ConfigurationError(
            f"{family} {alias!r}: module {module_name!r} has no class {class_name!r}"
        ) from None


#: ``driver =`` of balancer.ini: what starts and stops pool workers (lwr.balancer.drivers.base)
BALANCER_DRIVERS: Mapping[str, str] = {
    "local": "lwr.balancer.drivers.local:LocalDriver",
    "ec2": "lwr.balancer.drivers.ec2:Ec2Driver",
}
