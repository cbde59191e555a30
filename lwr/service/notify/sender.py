"""The sender thread: deliver the outbox's due rows, retry failures with back-off, record the end.

One thread per server process. It wakes when a row is queued (:attr:`NotifyStore.wakeup`) and
every ``notify_poll_interval`` (a retry coming due, a row queued by another process). Each row
is claimed under a lease, sent, then marked sent at once: the only moment a crash can repeat a
notification is between the receiver taking it and that mark (docs/service.md, "guarantee").
A failed try is retried after ``notify_retry_delay`` doubling up to ``notify_retry_max_delay``;
after ``notify_max_attempts`` tries the row is marked failed and logged. A webhook whose host
now resolves to an address the egress policy refuses (lwr.egress) is marked failed
at once, its reason kept: retrying would only knock on the same closed door.

The same loop deletes sent and failed rows older than ``notify_keep_days`` (at start, then every
hour, or every ``notify_keep_days`` when that is shorter), in batches (:meth:`Sender.prune`).
"""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Callable

from lwr.egress import EgressRefused
from lwr.service.notify import smtp, webhook
from lwr.service.notify.outbox import EMAIL, WEBHOOK, Notification, NotifyStore
from lwr.service.notify.settings import NotifyConfig
from lwr.service.pass_loop import PassLoop

log = logging.getLogger(__name__)

#: what a failed delivery raises (anything else is a bug, logged with its traceback)
DELIVERY_ERRORS = (OSError, smtplib.SMTPException, webhook.WebhookError)
#: rows deleted per transaction when pruning
PRUNE_BATCH = 500
#: the longest time between two prunes
PRUNE_INTERVAL = 3600.0


class Sender:
    """Delivers :class:`NotifyStore` rows; :meth:`run_once` is one pass (the tests call it)."""

    def __init__(self, store: NotifyStore, config: NotifyConfig) -> None:
        self.store = store
        self.config = config
        self._loop = PassLoop(
            "lwr-notify",
            lambda: self.run_once(),  # looked up at each pass, as a method call is
            lambda: self.config.poll_interval,
            store.wakeup,
            log,
            "notify: sender pass failed; retrying",
            after_passes=lambda: self._prune_when_due(),
        )
        self._stopping = self._loop.stopping
        # the store's egress policy: the one that judged the URL when it was set
        tls = config.webhook_tls()
        self._channels: dict[str, Callable[[Notification], None]] = {
            EMAIL: lambda item: smtp.send(config.smtp, item),
            WEBHOOK: lambda item: webhook.send(
                item, config.smtp.timeout, store.egress, tls, config.webhook_proxy
            ),
        }
        self._next_prune = 0.0

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._loop.stop(timeout)

    def run_once(self) -> int:
        """Deliver what is due now; how many rows were tried."""
        tried = 0
        for item in self.store.due(time.time()):
            if self._stopping.is_set():
                break
            if not self.store.claim(item, self.config.lease):
                continue
            tried += 1
            self._deliver(item)
        return tried

    def prune(self, now: float | None = None, batch: int = PRUNE_BATCH) -> int:
        """Delete every sent or failed row older than ``notify_keep_days``; how many went."""
        keep = self.config.keep_seconds
        if keep is None:
            return 0
        cutoff = (time.time() if now is None else now) - keep
        pruned = 0
        while not self._stopping.is_set():
            deleted = self.store.prune(cutoff, batch)
            pruned += deleted
            if deleted < batch:
                break
        if pruned:
            log.info("notify: pruned %d sent or failed notifications", pruned)
        return pruned

    def _prune_when_due(self) -> None:
        keep = self.config.keep_seconds
        if keep is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + min(PRUNE_INTERVAL, keep)
        self.prune()

    def _deliver(self, item: Notification) -> None:
        try:
            self._channels[item.channel](item)
        except EgressRefused as exc:
            self.store.failed(item, f"refused: {exc}")
            log.error(
                "notify: %s %s for job %s of %s refused, not sent: %s",
                item.channel,
                item.id,
                item.body.get("id"),
                item.owner,
                exc,
            )
            return
        except DELIVERY_ERRORS as exc:
            self._failed(item, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            log.exception("notify: %s %s raised", item.channel, item.id)
            self._failed(item, f"{type(exc).__name__}: {exc}")
            return
        self.store.sent(item)
        log.info(
            "notify: %s %s for job %s (%s) sent to %s",
            item.channel,
            item.id,
            item.body.get("id"),
            item.body.get("state"),
            item.owner,
        )

    def _failed(self, item: Notification, error: str) -> None:
        attempts = item.attempts + 1
        if attempts >= self.config.max_attempts:
            self.store.failed(item, error)
            log.error(
                "notify: %s %s for job %s of %s failed after %d attempts, giving up: %s",
                item.channel,
                item.id,
                item.body.get("id"),
                item.owner,
                attempts,
                error,
            )
            return
        delay = self.config.backoff(attempts)
        self.store.retry_later(item, time.time() + delay, error)
        log.warning(
            "notify: %s %s attempt %d failed (%s); retrying in %.1fs",
            item.channel,
            item.id,
            attempts,
            error,
            delay,
        )
