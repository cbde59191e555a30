"""LwrApp: the running server's objects, built once from an :class:`~lwr.config.AppConfig`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from lwr import __version__
from lwr.cache import FileCache
from lwr.config import DEFAULT_MANAGER, AppConfig
from lwr.egress import EgressPolicy
from lwr.errors import ConfigurationError, NotFoundError
from lwr.managers import layout, namespace, safe_path
from lwr.managers.base import Manager
from lwr.managers.stateful import StatefulManager
from lwr.persistence.store import JobStore
from lwr.pulsar_version import PULSAR_PROTOCOL_VERSION
from lwr.registry import MANAGERS, lookup
from lwr.service.notify.outbox import NotifyStore
from lwr.service.notify.sender import Sender
from lwr.service.retention.worker import build_worker
from lwr.service.users import Users
from lwr.staging.movers import StagingSettings
from lwr.staging.remote import RemoteStager
from lwr.staging.transfer import RetryPolicy, tls_context
from lwr.tes import legacy as tes_legacy
from lwr.tes.runtime import check_managers as check_container_runtimes
from lwr.tes.staging import TesStaging
from lwr.tes.user_storage import check_server_apart as check_user_storage
from lwr.tools import ToolAuthorizer, ToolBox

if TYPE_CHECKING:
    from lwr.job_metrics import JobMetrics
    from lwr.messaging.bind_amqp import AmqpBinding
    from lwr.metrics import AppMetrics

log = logging.getLogger(__name__)


class LwrApp:
    """Owns the job store and one :class:`StatefulManager` per configured manager."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.version = __version__
        #: reported to clients as the Pulsar version (setup answer and final status)
        self.pulsar_version = config.pulsar_protocol_version or PULSAR_PROTOCOL_VERSION
        self.store = JobStore(config.persistence_directory, config.database_url)
        #: service users and their plans (lwr.service), in the job store's database
        self.users = Users(self.store, config.plans, config.private_token, config.sessions)
        #: completion notifications: rows queued with each final state, sent by a thread
        self.notify = NotifyStore(
            self.store.db,
            config.notify.public_url,
            egress=config.notify.egress(),
            keep_seconds=config.notify.keep_seconds,
        )
        self.store.final_hooks.append(self.notify.enqueue)
        self.notify_sender = Sender(self.notify, config.notify)
        self.managers: dict[str, StatefulManager] = {}
        #: archives users' results after their plan's retention time, restores on upgrade
        self.retention = build_worker(config, self.store, self.users, self.managers)
        self.file_cache = (
            FileCache(config.file_cache_dir, config.file_cache_size)
            if config.file_cache_dir
            else None
        )
        # a TES task's files are staged by lwr.tes, every other job's by the RemoteStager
        stager = TesStaging(
            RemoteStager(settings=staging_settings(config)),
            self.users,
            EgressPolicy(config.tes_user_allowed_networks),
            store=self.store,
            user_storage=config.tes_user_storage,
            proxy=config.tes_http_proxy,
            tls=tls_context(config.tes_ca_file),
        )
        user_auth = None
        if config.user_auth is not None:
            from lwr.auth.checker import UserAuth

            user_auth = UserAuth(config.user_auth)
        authorizer = ToolAuthorizer(
            ToolBox.load(config.tool_config_files) if config.tool_config_files else None
        )
        if not authorizer.enabled:
            log.info("no tool_config_files: jobs of any tool may run")
        metrics: JobMetrics | None = None
        if config.job_metrics_config_file is not None:
            from lwr.job_metrics import JobMetrics

            metrics = JobMetrics(config.job_metrics_config_file)
        for manager_config in config.managers:
            namespace.check_manager_name(manager_config.name)
            backend_class: type[Manager] = lookup("job manager type", MANAGERS, manager_config.type)
            backend_class.check_options(manager_config.name, manager_config.options)
            backend = backend_class(manager_config.name, manager_config.options)
            staging = manager_config.options.get("staging_directory")
            staging_directory = layout.staging_root(
                config.staging_directory,
                manager_config.name,
                (config.here / staging).resolve() if staging else None,
            )
            self.managers[manager_config.name] = StatefulManager(
                backend,
                self.store,
                staging_directory,
                tool_dependency_dir=config.tool_dependency_dir,
                maximum_stream_size=config.maximum_stream_size,
                retention=config.finished_job_retention,
                stager=stager,
                user_auth=user_auth,
                authorizer=authorizer,
                instrument=metrics,
            )
        for manager in self.managers.values():
            manager.pulsar_version = self.pulsar_version
            manager.running_limit = self.users.running_limit
        default = self.managers.get(DEFAULT_MANAGER)
        if default is not None:
            # a named manager whose directory sits among the default manager's job directories
            default.reserved_ids = frozenset(
                manager.staging_directory.name
                for manager in self.managers.values()
                if manager is not default
                and manager.staging_directory.parent == default.staging_directory
            )
        if not self.managers:
            raise ConfigurationError("no job manager configured")
        check_container_runtimes(self.managers)
        check_user_storage(config, self.managers)  # users' file roots apart from our own files
        self.messaging: AmqpBinding | None = None
        if config.message_queue_url:
            from lwr.messaging import build_binding

            self.messaging = build_binding(config, self.managers)
        self.metrics = build_metrics(self)
        self._started = False

    def start(self) -> None:
        """Recover persisted jobs and start every manager's monitor."""
        if self._started:
            return
        self._upgrade_layout()
        tes_legacy.adopt(self.store, self.managers)  # users' tasks from before namespaces
        for manager in self.managers.values():
            manager.start()
        if self.messaging is not None:
            self.messaging.start()
        self.notify_sender.start()
        self.retention.start()
        self._started = True
        log.info(
            "LWR %s started: managers %s, staging in %s, state in %s",
            self.version,
            ", ".join(sorted(self.managers)),
            self.config.staging_directory,
            self.config.persistence_directory,
        )
        # "paths" is the Windows fallback (docs/windows.md); said once so a forced one is visible
        log.info("job files are opened with the %s backend of safe_path", safe_path.BACKEND)

    def _upgrade_layout(self) -> None:
        """Move the default manager's jobs to Pulsar's layout; refuse names that would collide."""
        default = self.managers.get(DEFAULT_MANAGER)
        if default is None:
            return
        for name in default.reserved_ids:
            if self.store.get(DEFAULT_MANAGER, name) is not None:
                raise ConfigurationError(
                    f"a job manager's directory {name!r} would hold the default manager's job "
                    f"{name!r}: rename that manager or give it a staging_directory"
                )

        def is_final(job_id: str) -> bool:
            record = self.store.get(DEFAULT_MANAGER, job_id)
            return record is None or record.state.is_final

        if default.staging_directory == self.config.staging_directory:
            moved = layout.migrate_legacy_default(self.config.staging_directory, is_final)
            if moved:
                log.info("layout: moved %d job(s) of the default manager to Pulsar's layout", moved)

    def stop(self) -> None:
        self.notify_sender.stop()
        if self.messaging is not None:
            self.messaging.stop()
        for manager in self.managers.values():
            manager.stop()
        self.retention.stop()
        self.store.close()

    def manager(self, name: str | None) -> StatefulManager:
        """The named manager; the default one (or the only one) when ``name`` is None."""
        if name is None:
            if DEFAULT_MANAGER in self.managers:
                return self.managers[DEFAULT_MANAGER]
            if len(self.managers) == 1:
                return next(iter(self.managers.values()))
            raise NotFoundError("no default manager configured; use /managers/NAME/")
        try:
            return self.managers[name]
        except KeyError:
            raise NotFoundError(f"unknown manager {name!r}") from None

    def assign_job_id(self, requested: str) -> str:
        """The id a new job gets: the client's own, or a fresh UUID when ``assign_ids = uuid``."""
        return uuid.uuid4().hex if self.config.assign_ids == "uuid" else requested

    def setup_answer(self, manager: StatefulManager, job_id: str) -> Mapping[str, object]:
        from lwr.managers.status import system_properties

        answer: dict[str, object] = dict(manager.directory(job_id).setup_answer())
        answer.update(
            job_id=namespace.client_id(job_id),
            path_separator=system_properties()["separator"],
            system_properties=system_properties(),
            lwr_version=self.version,
            pulsar_version=self.pulsar_version,
        )
        return answer


def build_metrics(app: LwrApp) -> AppMetrics | None:
    """/metrics (lwr.metrics) when prometheus-client is installed; its listeners see recovery."""
    from lwr import metrics

    if not metrics.available():
        log.info("no prometheus-client: /metrics answers 404 (%s)", metrics.INSTALL_HINT)
        return None
    return metrics.AppMetrics(
        app.store, app.managers, lambda: app.messaging.pool if app.messaging else None
    )


def staging_settings(config: AppConfig) -> StagingSettings:
    """The server-side staging options of ``config``, for the movers of every action."""
    return StagingSettings(
        policy=RetryPolicy(
            retries=config.staging_retries,
            delay=config.staging_retry_delay,
            max_delay=config.staging_retry_max_delay,
            timeout=config.staging_timeout,
        ),
        remote_copy_allowed_paths=config.remote_copy_allowed_paths,
        ssh_host_key_policy=config.staging_ssh_host_key_policy,
        ssh_known_hosts=config.staging_ssh_known_hosts,
        object_store_config_file=config.object_store_config_file,
    )
