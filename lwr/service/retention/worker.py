"""The retention worker: one thread per server that archives due results and runs restores.

Each pass (every ``retention_scan_interval`` seconds, at start, and when a plan change wakes it)
reads the inbox (jobs that finished, went or began again since: the job store's hooks write
it in their own transactions, :mod:`lwr.service.retention.table`), so it drops rows of jobs that
are gone and gives newly finished jobs their deadlines without scanning every job; then it
queues archives that are due and restores that the owners' plans now ask for (both by index),
and runs the queue. The steps,
each idempotent and each ending in one guarded transaction (:meth:`RetentionTable.advance`):

* ``archive``: pack the results into a local temporary file, store it under the job attempt's
  fixed key, read it back from the store (size and SHA-256); then mark the row ``archived``.
* ``purge``: remove the hot copies (the archive is known good by now).
* ``restore``: make the archive readable (Glacier), fetch it, check its SHA-256, extract and
  check it beside the job's directories, swap them in; then mark the row ``hot``.
* ``forget``: delete the archive (it is back, or a restore was asked for mid-archive).

A server killed anywhere re-runs the step it was in: before a step's transaction the row still
names that step and its source (hot files, or the archive) is untouched; after it, the next step
runs. So results are hot or archived, once, never half of each nor lost.

``LWR_TEST_RETENTION_CRASH_AT=<point>`` makes the process SIGKILL itself at that point (a test
hook, inert without the variable): ``archive-stored`` (archive written and checked, row not yet
changed), ``archive-recorded`` (row archived, hot files not yet removed) and ``restore-placed``
(files back in place, row not yet changed).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lwr.managers.directory import JobDirectory
from lwr.managers.namespace import client_id, owner_of
from lwr.persistence.store import JobStore
from lwr.service.pass_loop import PassLoop
from lwr.service.plans import Plan
from lwr.service.retention import archive
from lwr.service.retention.intake import Intake
from lwr.service.retention.planning import Planner
from lwr.service.retention.settings import RetentionConfig
from lwr.service.retention.stores import ArchiveStore, file_sha256, open_store
from lwr.service.retention.table import (
    ARCHIVE,
    ARCHIVED,
    FORGET,
    HOT,
    PURGE,
    RESTORE,
    Kept,
    RetentionTable,
)
from lwr.service.store import User
from lwr.service.users import Users

if TYPE_CHECKING:
    from lwr.config import AppConfig
    from lwr.managers.stateful import StatefulManager

log = logging.getLogger(__name__)

CRASH_VARIABLE = "LWR_TEST_RETENTION_CRASH_AT"
#: the longest wait before a failed step is tried again
MAX_BACKOFF = 300.0
#: how long a claimed step is this server's alone (another server waits this long for one
#: that died mid-step; the same server, restarted, takes it up at once)
LEASE = 600.0

Locator = Callable[[str, str], JobDirectory]


def archive_key(kept: Kept) -> str:
    """The fixed store key of one job attempt's archive (``manager/owner/job.seq``)."""
    return f"{kept.manager}/{owner_of(kept.job_id)}/{client_id(kept.job_id)}.{kept.seq}"


def crash_point(name: str) -> None:
    """Die here, as ``kill -9`` would, when the test hook names this point."""
    if os.environ.get(CRASH_VARIABLE) == name:
        log.warning("retention: %s=%s: killing this process now", CRASH_VARIABLE, name)
        os.kill(os.getpid(), signal.SIGKILL)


class RetentionWorker:
    """See the module docstring."""

    def __init__(
        self,
        store: JobStore,
        users: Users,
        config: RetentionConfig,
        locate: Locator,
        scratch: Path,
    ) -> None:
        self.jobs = store
        self.table = RetentionTable(store.db)
        # what changed reaches the inbox in the job store's own transactions
        store.final_hooks.append(self.table.job_finished)
        store.forget_hooks.append(self.table.job_forgotten)
        self.planner = Planner(self.table, users)
        self.intake = Intake(self.table, self.planner.retention_of)
        self.config = config
        self.locate = locate
        self.scratch = scratch
        self._archives: ArchiveStore | None = None
        self._wakeup = threading.Event()
        self._loop = PassLoop(
            "lwr-retention",
            lambda: self.run_once(),  # looked up at each pass, as a method call is
            lambda: self.config.scan_interval,
            self._wakeup,
            log,
            "retention: pass failed; trying again",
        )
        self._stopping = self._loop.stopping
        #: this server's name in leases: host and directory, the same after a restart, so a
        #: server killed mid-step takes its step up again at once
        self.identity = f"{socket.gethostname()}:{scratch}"

    @property
    def archives(self) -> ArchiveStore:
        if self._archives is None:
            self._archives = open_store(self.config)
        return self._archives

    # -- the thread ---------------------------------------------------------------------------

    def start(self) -> None:
        _ = self.archives  # a misconfigured store fails the start, not the first archive
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(30)

    def wake(self) -> None:
        self._wakeup.set()

    def plan_changed(self, user: User, old: Plan, new: Plan) -> None:
        """The server's plan listener: queue the restores, then run them now."""
        self.planner.plan_changed(user, old, new)
        self.wake()

    def run_once(self) -> int:
        """One pass; returns how many things it did (0: nothing more to do now)."""
        now = time.time()
        done = self.take_changes(now)
        done += self.planner.queue_due(now)
        done += self.planner.reconcile(now)
        for kept in self.table.queue(time.time(), self.identity):
            if self._stopping.is_set():
                break
            done += self._step(kept)
        return done

    def take_changes(self, now: float) -> int:
        """Handle what the inbox says changed: drop rows (and archives) of job attempts that
        are gone, give newly finished jobs their rows. Returns how many entries it handled."""
        changes = self.intake.changes()
        dropped = 0
        for change in changes:
            if change.stale:
                kept = self.table.get(change.manager, change.job_id)
                if kept is not None and kept.seq == change.kept_seq:
                    self._drop(kept)
                    dropped += 1
        return dropped + self.intake.adopt(changes, now)

    # -- the steps ----------------------------------------------------------------------------

    def _step(self, kept: Kept) -> int:
        steps = {
            ARCHIVE: self._archive,
            PURGE: self._purge,
            RESTORE: self._restore,
            FORGET: self._forget,
        }
        if not self.table.claim(kept, self.identity, time.time() + LEASE):
            return 0  # another server's worker is on it
        record = self.jobs.get(kept.manager, kept.job_id)
        if record is None or record.seq != kept.seq:
            self._drop(kept)  # the job was cleaned or set up again meanwhile
            return 1
        try:
            return 1 if steps[kept.task or ""](kept) else 0
        except Exception as exc:
            delay = min(MAX_BACKOFF, 2.0 ** min(kept.attempts + 1, 16))
            log.warning(
                "retention: %s of job %s/%s failed (%s); again in %.0fs",
                kept.task,
                kept.manager,
                kept.job_id,
                exc,
                delay,
            )
            self.table.advance(
                kept,
                kept.task,
                attempts=kept.attempts + 1,
                error=str(exc)[:500],
                queued=time.time() + delay,
            )
            return 0

    def _archive(self, kept: Kept) -> bool:
        directory = self.locate(kept.manager, kept.job_id)
        if not directory.exists():  # never record an empty archive for files kept elsewhere
            raise OSError(f"the job directory {directory.root} is not on this server")
        key = archive_key(kept)
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            packed = Path(tmp) / "archive.tar.gz"
            size, sha256 = archive.pack(directory.root, packed)
            self.archives.put(key, packed, sha256)
        if not self.archives.check(key, size, sha256):
            raise OSError(f"archive {key} does not read back as written")
        crash_point("archive-stored")
        moved = self.table.advance(
            kept,
            ARCHIVE,
            status=ARCHIVED,
            archive_id=key,
            sha256=sha256,
            size=size,
            task=PURGE,
            attempts=0,
            error=None,
        )
        log.info(
            "retention: job %s/%s archived as %s (%d bytes)", kept.manager, kept.job_id, key, size
        )
        crash_point("archive-recorded")
        return moved

    def _purge(self, kept: Kept) -> bool:
        archive.purge(self.locate(kept.manager, kept.job_id).root)
        return self.table.advance(kept, PURGE, task=None)

    def _restore(self, kept: Kept) -> bool:
        key = kept.archive_id or archive_key(kept)
        if not self.archives.prepare(key):
            # a Glacier restore under way: look again next pass, let other work go first
            self.table.advance(kept, RESTORE, queued=time.time() + self.config.scan_interval)
            return False
        directory = self.locate(kept.manager, kept.job_id)
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            fetched = Path(tmp) / "archive.tar.gz"
            self.archives.fetch(key, fetched)
            if kept.sha256 and file_sha256(fetched) != kept.sha256:
                raise OSError(f"archive {key} does not match its recorded SHA-256")
            archive.place(directory.root, fetched)
        crash_point("restore-placed")
        moved = self.table.advance(kept, RESTORE, status=HOT, task=FORGET, attempts=0, error=None)
        log.info("retention: job %s/%s restored from %s", kept.manager, kept.job_id, key)
        return moved

    def _forget(self, kept: Kept) -> bool:
        self.archives.delete(kept.archive_id or archive_key(kept))
        return self.table.advance(kept, FORGET, task=None, archive_id=None, sha256=None, size=None)

    def _drop(self, kept: Kept) -> None:
        """A row whose job attempt is gone: its archive goes too."""
        if kept.archive_id or kept.task == ARCHIVE:
            self.archives.delete(kept.archive_id or archive_key(kept))
        self.table.delete(kept)
        log.info(
            "retention: job %s/%s is gone; its retention row is dropped", kept.manager, kept.job_id
        )


def build_worker(
    config: AppConfig, store: JobStore, users: Users, managers: Mapping[str, StatefulManager]
) -> RetentionWorker:
    """The app's worker, listening to plan changes; ``managers`` may still be filling up."""
    settings = replace(config.retention, default_directory=config.persistence_directory / "archive")
    worker = RetentionWorker(
        store,
        users,
        settings,
        lambda manager, job_id: managers[manager].directory(job_id),
        config.persistence_directory / "retention-scratch",
    )
    users.plan_listeners.append(worker.plan_changed)
    return worker
