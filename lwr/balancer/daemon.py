"""The balancer's loop: every poll interval, read the load, decide, launch or drain; in between,
follow the drains.

The daemon holds no state that matters across restarts: the driver finds the workers again
(adoption), draining workers say so in their reports, and the rate needs only one interval of
counters. So a balancer killed with -9 and started again picks up where it was, with no duplicate
and no orphan. Its first decision comes one poll interval after start, once the rate has a
baseline; deciding at once would read a busy pool's load as zero and drain it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwr.balancer.broker import Heard, PoolBroker
from lwr.balancer.config import BalancerConfig
from lwr.balancer.drivers.base import Driver, Worker
from lwr.balancer.metrics import BalancerMetrics
from lwr.balancer.policy import Decision, Observation, WorkerView, decide
from lwr.balancer.signal import RateMeter, backlog
from lwr.errors import ConfigurationError

log = logging.getLogger(__name__)

#: seconds a worker that said ``gone`` may take to exit before it is stopped
GONE_GRACE = 10.0
#: decisions.jsonl is rotated to decisions.jsonl.1 past this size
HISTORY_LIMIT = 5 * 1024 * 1024


@dataclass
class Drain:
    deadline: float
    gone_at: float | None = None


class Balancer:
    def __init__(
        self,
        config: BalancerConfig,
        driver: Driver,
        broker: PoolBroker,
        metrics: BalancerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.driver = driver
        self.broker = broker
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.meter = RateMeter()
        self.draining: dict[str, Drain] = {}
        self.workers: dict[str, Worker] = {}
        self.last: Decision | None = None
        self.waiting = 0
        self.counts = {"launched": 0, "drained": 0, "killed": 0}
        self.stopping = threading.Event()
        self.status_path = config.state_directory / "status.json"
        self.history_path = config.state_directory / "decisions.jsonl"
        self._lock: Any = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.config.state_directory.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.config.state_directory / "balancer.lock")
        adopted = self.driver.start()
        self.workers = {w.worker_id: w for w in adopted}
        if adopted:
            log.info(
                "adopted %d worker(s): %s",
                len(adopted),
                ", ".join(f"{w.worker_id} ({w.where})" for w in adopted),
            )
        self.waiting = self._waiting()
        self.meter.sample(self.clock(), self._received(self.broker.heard()), self.waiting)
        self._write_status("running")

    def run(self) -> None:
        """Poll until ``stopping`` is set; then stop (terminating workers if configured)."""
        next_poll = self.clock() + self.config.poll_seconds
        while not self.stopping.is_set():
            try:
                if self.clock() >= next_poll:
                    next_poll = self.clock() + self.config.poll_seconds
                    self.poll()
                else:
                    self.tick()
            except Exception:  # the broker or the cloud may fail for a while: keep polling
                log.exception("poll failed; trying again")
            self.stopping.wait(min(1.0, max(0.05, next_poll - self.clock())))
        self.shutdown()

    def shutdown(self) -> None:
        """On a clean exit: drain and stop what runs (``terminate_on_exit``), or leave it up
        for the next balancer to adopt."""
        self._write_status("stopping")
        terminate = self.config.terminate_on_exit
        if terminate:
            self.workers = self.driver.alive()
            for worker_id in list(self.workers):
                if worker_id not in self.draining:
                    self._drain(worker_id, self.broker.heard())
            while self.draining and self.workers:
                self.tick()
                self.sleep(0.2)
        else:
            log.info("leaving %d worker(s) up (terminate_on_exit = false)", len(self.workers))
        self.driver.close(workers_left=not terminate and bool(self.workers))
        self._write_status("stopped")

    # -- one poll -----------------------------------------------------------------------------

    def poll(self) -> Decision:
        heard = self.tick()
        self.waiting = self._waiting()
        now = self.clock()
        rate = self.meter.sample(now, self._received(heard), self.waiting)
        if self.config.signal == "rate":
            load = rate
        else:
            load = backlog(self.waiting, (h.report.jobs_held for h in heard.values()))
        views = tuple(
            self._view(worker, heard.get(worker.worker_id), now)
            for worker in self.workers.values()
            if worker.worker_id not in self.draining
        )
        slots = max((h.report.slots for h in heard.values()), default=1)
        decision = decide(self.config.table, Observation(load, views, self.waiting, max(1, slots)))
        self._apply(decision, heard)
        self.last = decision
        self._record(decision)
        return decision

    def tick(self) -> dict[str, Heard]:
        """Between polls: learn which workers exist and follow the drains."""
        self.workers = self.driver.alive()
        heard = self.broker.heard()
        now = self.clock()
        for worker_id, seen in heard.items():
            if worker_id not in self.workers:
                if now - seen.at > 2 * self.config.poll_seconds:  # died, or not ours: stale
                    self.broker.forget(worker_id)
                continue
            if (seen.report.draining or seen.report.gone) and worker_id not in self.draining:
                log.info("worker %s is draining (adopted or told by someone else)", worker_id)
                self.draining[worker_id] = Drain(now + self.config.drain_timeout)
        for worker_id, drain in list(self.draining.items()):
            self._follow(worker_id, drain, heard.get(worker_id), now)
        return heard

    def _follow(self, worker_id: str, drain: Drain, seen: Heard | None, now: float) -> None:
        if worker_id not in self.workers:
            log.info("worker %s has gone", worker_id)
            self.draining.pop(worker_id, None)
            self.broker.forget(worker_id)
            return
        if seen is not None and seen.report.gone and drain.gone_at is None:
            drain.gone_at = now
        if drain.gone_at is not None and now - drain.gone_at >= GONE_GRACE:
            log.info("worker %s said it was gone; stopping what is left of it", worker_id)
            self._terminate(worker_id, killed=False)
        elif now >= drain.deadline:
            log.warning(
                "worker %s did not finish draining in %.0fs; killing it",
                worker_id,
                self.config.drain_timeout,
            )
            self._terminate(worker_id, killed=True)

    def _terminate(self, worker_id: str, killed: bool) -> None:
        self.driver.terminate(worker_id)
        self.workers.pop(worker_id, None)
        self.draining.pop(worker_id, None)
        self.broker.forget(worker_id)
        if killed:
            self.counts["killed"] += 1
            if self.metrics:
                self.metrics.killed.inc()

    def _apply(self, decision: Decision, heard: dict[str, Heard]) -> None:
        if decision.launch:
            started = self.driver.launch(decision.launch)
            self.workers.update((w.worker_id, w) for w in started)
            self.counts["launched"] += len(started)
            if self.metrics:
                self.metrics.launched.inc(len(started))
            if len(started) < decision.launch:
                log.warning("launched %d of %d worker(s)", len(started), decision.launch)
        for worker_id in decision.drain:
            self._drain(worker_id, heard)
        log.info("decision: %s", decision.describe())

    def _drain(self, worker_id: str, heard: dict[str, Heard]) -> None:
        """Ask a worker to drain; one that never reported holds no job and is stopped now."""
        if worker_id not in heard:
            log.info("worker %s never reported (still starting): stopping it", worker_id)
            self._terminate(worker_id, killed=False)
            return
        self.draining[worker_id] = Drain(self.clock() + self.config.drain_timeout)
        self.counts["drained"] += 1
        if self.metrics:
            self.metrics.drained.inc()
        try:
            self.broker.drain(worker_id, self.config.drain_timeout)
        except Exception as exc:  # the deadline still stops it
            log.error(
                "could not send drain to %s (%s); it is killed at its deadline", worker_id, exc
            )

    # -- helpers ------------------------------------------------------------------------------

    def _view(self, worker: Worker, seen: Heard | None, now: float) -> WorkerView:
        interval = self.config.poll_seconds
        if seen is None:
            return WorkerView(worker.worker_id, starting=True)
        idle = seen.report.jobs_held == 0 and now - seen.busy_at >= interval
        return WorkerView(worker.worker_id, seen.report.jobs_held, idle_all_interval=idle)

    def _received(self, heard: dict[str, Heard]) -> dict[str, int]:
        return {worker: h.report.jobs_received_total for worker, h in heard.items()}

    def _waiting(self) -> int:
        """The setup queue's backlog; both it and the kill queue are declared if missing.

        Galaxy's client declares no queue when it publishes, and the workers declare theirs only
        when they start: before the pool's first worker a setup would be dropped (the job lost)
        and a kill too (the job, its setup kept, would run after all). The ``status`` queue is
        not declared: a status request for a job no worker knows is answered by nobody anyway,
        and the job's setup makes its worker announce its status unasked.
        """
        self.broker.keep(self.config.kill_queue)
        return self.broker.waiting(self.config.setup_queue)

    def pool_size(self) -> int:
        return len([w for w in self.workers if w not in self.draining])

    def _record(self, decision: Decision) -> None:
        actual, draining = self.pool_size(), len(self.draining)
        if self.metrics:
            self.metrics.observe(decision, actual, draining, self.waiting)
        entry = {
            "time": time.time(),
            "load": decision.load,
            "row": decision.row_index + 1,
            "min": decision.row.min,
            "max": decision.row.max,
            "before": decision.before,
            "after": decision.after,
            "launch": decision.launch,
            "drain": list(decision.drain),
            "actual": actual,
            "draining": draining,
            "waiting": self.waiting,
            "reason": decision.reason,
        }
        _append(self.history_path, entry)
        self._write_status("running")

    def _write_status(self, state: str) -> None:
        status: dict[str, Any] = {
            "state": state,
            "pid": os.getpid(),
            "updated_at": time.time(),
            "pool": self.pool_size(),
            "draining": sorted(self.draining),
            "workers": sorted(self.workers),
            **self.counts,
            "last_decision": self.last.describe() if self.last else None,
        }
        temporary = self.status_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(status))
        os.replace(temporary, self.status_path)


def _lock(path: Path) -> Any:
    """Hold an exclusive lock on ``path`` for the life of the process: two balancers sharing a
    state directory (two pid files, one config) would each launch the pool, so the second one
    refuses to start. The kernel drops the lock when the holder dies, even by kill -9."""
    import fcntl

    handle = open(path, "a+")  # held open (and locked) for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise ConfigurationError(
            f"another balancer (pid {holder}) uses the state directory {path.parent}"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _append(path: Path, entry: dict[str, Any]) -> None:
    if path.exists() and path.stat().st_size > HISTORY_LIMIT:
        os.replace(path, path.with_suffix(".jsonl.1"))
    with open(path, "a") as history:
        history.write(json.dumps(entry) + "\n")
