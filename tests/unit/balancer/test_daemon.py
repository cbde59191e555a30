"""The balancer's loop with an in-memory driver and broker: decisions applied, drains followed,
state written. The real driver and broker are exercised by the integration tests."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from lwr.balancer.config import BalancerConfig, load_balancer_config
from lwr.balancer.daemon import GONE_GRACE, Balancer
from lwr.balancer.metrics import BalancerMetrics
from tests.unit.balancer.fakes import Clock, MemoryBroker, MemoryDriver

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def config(tmp_path: Path) -> BalancerConfig:
    path = tmp_path / "balancer.ini"
    path.write_text(
        "[balancer]\npoll_interval = 0.5\ndrain_timeout = 60\n[load table]\n0 1 1\n0.5 1 3\n2 2 4\n"
    )
    return load_balancer_config(path)


def make(
    config: BalancerConfig, existing: tuple[str, ...] = ()
) -> tuple[Balancer, Any, Any, Clock]:
    clock = Clock()
    driver, broker = MemoryDriver(config, existing), MemoryBroker(clock)
    balancer = Balancer(config, driver, broker, BalancerMetrics(), clock=clock, sleep=clock.sleep)
    return balancer, driver, broker, clock


def test_burst_grows_to_max_then_idle_workers_drain_back_to_the_idle_row(
    config: BalancerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lwr.balancer")
    balancer, driver, broker, clock = make(config)
    balancer.start()
    clock.now += 30
    assert balancer.poll().launch == 1  # idle row [1, 1]
    broker.queue = 60  # a burst: 60 jobs arrive in the queue
    clock.now += 30
    decision = balancer.poll()
    assert (decision.row_index, decision.after) == (2, 4) and len(driver.launched) == 4
    assert "load 2.000 -> row 3 [2, 4]: pool 1 -> 4" in caplog.text
    for worker in driver.launched:  # the workers take half the burst; nothing new arrives
        broker.report(worker, held=2, received=8)
    broker.queue = 28
    clock.now += 30
    decision = balancer.poll()  # load 0: row 1 [1, 1], but no busy worker goes while jobs wait
    assert (decision.load, decision.row_index, decision.changed) == (0.0, 0, False)
    for worker in driver.launched:  # ... and finish it
        broker.report(worker, held=0, received=15)
    broker.queue = 0
    clock.now += 30
    decision = balancer.poll()
    assert decision.after == 1 and len(broker.drains) == 3
    assert "pool 4 -> 1 (above max; launch 0, drain 3" in caplog.text


def test_restarted_balancer_adopts_and_does_not_decide_before_a_baseline(
    config: BalancerConfig,
) -> None:
    balancer, driver, broker, clock = make(config, existing=("a", "b", "c"))
    for worker in ("a", "b", "c"):
        broker.report(worker, held=2, received=40)  # busy mid-burst when the balancer died
    balancer.start()  # the counters at start are the rate's baseline
    assert driver.launched == [] and broker.drains == []
    for worker in ("a", "b", "c"):
        broker.report(worker, held=2, received=50)  # 30 jobs in 30 s: 1 job/s, row 2 [1, 3]
    clock.now += 30
    decision = balancer.poll()
    assert decision.load == 1.0 and decision.before == 3 and not decision.changed
    assert driver.terminated == [] and broker.drains == []


def test_drain_follows_gone_and_kills_at_the_deadline(config: BalancerConfig) -> None:
    balancer, driver, broker, clock = make(config, existing=("a", "b", "c"))
    broker.report("a")
    broker.report("b")
    broker.report("c", held=1)
    balancer.start()
    clock.now += 30
    decision = balancer.poll()  # load 0: row [1, 1]; the idle ones go first
    assert decision.drain == ("a", "b") and broker.drains == ["a", "b"]
    broker.report("a", gone=True, draining=True)
    clock.now += 1
    balancer.tick()
    assert driver.terminated == []  # said gone: given time to exit by itself
    driver.live.pop("a")  # ... which it does
    clock.now += 1
    balancer.tick()
    assert "a" not in balancer.draining and driver.terminated == []
    clock.now += 60  # b never finished
    balancer.tick()
    assert driver.terminated == ["b"] and balancer.counts["killed"] == 1
    assert GONE_GRACE < 60


def test_a_worker_that_never_reported_is_stopped_instead_of_drained(tmp_path: Path) -> None:
    path = tmp_path / "balancer.ini"
    path.write_text("[load table]\n0.5 1 2\n")  # load 0: below the first rate, no worker
    balancer, driver, broker, clock = make(load_balancer_config(path), existing=("quiet", "b"))
    broker.report("b")
    balancer.start()
    clock.now += 30
    assert balancer.poll().drain == ("b", "quiet")
    assert broker.drains == ["b"] and driver.terminated == ["quiet"]


def test_a_worker_reporting_draining_is_followed_and_not_counted(config: BalancerConfig) -> None:
    balancer, _driver, broker, clock = make(config, existing=("a", "b"))
    broker.report("a", held=1)
    broker.report("b", held=1, draining=True)  # drained by an earlier balancer or by SIGTERM
    balancer.start()
    clock.now += 30
    decision = balancer.poll()
    assert decision.before == 1 and "b" in balancer.draining


def test_clean_exit_drains_everything_and_writes_state(config: BalancerConfig) -> None:
    balancer, driver, broker, clock = make(config)
    balancer.start()
    clock.now += 30
    balancer.poll()
    broker.report("w0")
    balancer.shutdown()  # w0 never finishes: killed at its deadline
    assert broker.drains == ["w0"] and driver.terminated == ["w0"] and driver.closed is False
    status = json.loads(balancer.status_path.read_text())
    assert status["state"] == "stopped" and status["launched"] == 1
    history = [json.loads(line) for line in balancer.history_path.read_text().splitlines()]
    assert history[0]["after"] == 1 and history[0]["row"] == 1


def test_leaving_workers_up_on_exit(config: BalancerConfig) -> None:
    balancer, driver, broker, _ = make(config, existing=("a",))
    object.__setattr__(config, "terminate_on_exit", False)
    balancer.start()
    balancer.shutdown()
    assert driver.terminated == [] and broker.drains == [] and driver.closed is True


def test_the_backlog_signal_reads_waiting_plus_held(tmp_path: Path) -> None:
    path = tmp_path / "balancer.ini"
    path.write_text("[balancer]\nsignal = backlog\n[load table]\n0 0 0\n1 1 2\n8 2 6\n")
    balancer, _, broker, clock = make(load_balancer_config(path), existing=("a",))
    broker.report("a", held=2)
    broker.queue = 7
    balancer.start()
    clock.now += 30
    decision = balancer.poll()  # 7 waiting + 2 held = 9 in hand: row 3 [2, 6]; 1 + 7 / 2 slots
    assert (decision.load, decision.row_index, decision.after) == (9.0, 2, 5)


def test_malformed_reports_are_ignored(config: BalancerConfig) -> None:
    class Message:
        acked = False

        def ack(self) -> None:
            self.acked = True

    broker = MemoryBroker(Clock())
    message = Message()
    broker._on_message({"worker_id": "a b", "version": 1}, message)
    broker._on_message(["not", "a", "report"], Message())
    assert message.acked and broker.heard() == {}


def test_a_second_balancer_on_the_same_state_directory_refuses_to_start(
    config: BalancerConfig,
) -> None:
    from lwr.errors import ConfigurationError

    first, *_ = make(config)
    first.start()
    second, driver, *_ = make(config)
    with pytest.raises(ConfigurationError, match=r"another balancer \(pid \d+\) uses"):
        second.start()
    assert driver.launched == []
    first._lock.close()  # the first one exits: the next may start
    second.start()


def test_the_kill_queue_is_kept_from_the_start_and_at_every_poll(config: BalancerConfig) -> None:
    """Before any worker ran, a kill has no queue but the one the balancer declares."""
    balancer, _, broker, clock = make(config)
    balancer.start()
    assert broker.kept == ["pulsar__kill"]
    clock.now += 30
    balancer.poll()
    assert broker.kept == ["pulsar__kill", "pulsar__kill"]
