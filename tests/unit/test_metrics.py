"""lwr.metrics: states read from the store at scrape time, events from the manager listener."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lwr.managers.base import JobState
from lwr.metrics import AppMetrics
from lwr.persistence.store import JobRecord, JobStore


class FakeManager:
    """What AppMetrics uses of a StatefulManager: its listeners and its job directories."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.listeners: list[Any] = []

    def directory(self, job_id: str) -> SimpleNamespace:
        return SimpleNamespace(root=self.root / job_id)

    def tell(self, record: JobRecord) -> None:
        for listener in self.listeners:
            listener(self, record)


def _samples(metrics: AppMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.exposition()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_jobs_by_state_come_from_the_store(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "db")
    store.put(JobRecord("m", "a", state=JobState.RUNNING))
    store.put(JobRecord("m", "b", state=JobState.COMPLETE))
    store.put(JobRecord("m", "c", state=JobState.COMPLETE))
    metrics = AppMetrics(store, {"m": FakeManager("m", tmp_path)}, lambda: None)  # type: ignore[dict-item]
    samples = _samples(metrics)
    assert samples[("lwr_jobs", (("manager", "m"), ("state", "complete")))] == 2
    assert samples[("lwr_jobs", (("manager", "m"), ("state", "running")))] == 1
    assert samples[("lwr_jobs", (("manager", "m"), ("state", "lost")))] == 0
    store.delete("m", "b")  # nothing cached: the next scrape reads the store again
    assert _samples(metrics)[("lwr_jobs", (("manager", "m"), ("state", "complete")))] == 1
    assert not any(name.startswith("lwr_pool") for name, _ in samples)


def test_waits_run_times_and_bytes_are_observed_once_per_attempt(tmp_path: Path) -> None:
    manager = FakeManager("m", tmp_path)
    metrics = AppMetrics(JobStore(tmp_path / "db"), {"m": manager}, lambda: None)  # type: ignore[dict-item]
    (tmp_path / "j" / "inputs" / "sub").mkdir(parents=True)
    (tmp_path / "j" / "inputs" / "sub" / "in.dat").write_bytes(b"x" * 300)
    (tmp_path / "j" / "outputs").mkdir()
    (tmp_path / "j" / "outputs" / "out.dat").write_bytes(b"y" * 50)
    (tmp_path / "j" / "outputs" / "link").symlink_to(tmp_path / "j" / "inputs" / "sub" / "in.dat")
    running = JobRecord("m", "j", state=JobState.RUNNING, created=100.0, updated=103.0)
    manager.tell(running)
    manager.tell(running)  # told twice (a status request): observed once
    manager.tell(JobRecord("m", "j", state=JobState.COMPLETE, created=100.0, updated=110.0))
    samples = _samples(metrics)
    label = (("manager", "m"),)
    assert samples[("lwr_job_queue_wait_seconds_count", label)] == 1
    assert samples[("lwr_job_queue_wait_seconds_sum", label)] == 3.0
    assert samples[("lwr_job_run_seconds_sum", label)] == 7.0
    assert samples[("lwr_job_run_seconds_bucket", (("le", "5.0"), *label))] == 0
    assert samples[("lwr_job_run_seconds_bucket", (("le", "15.0"), *label))] == 1
    assert samples[("lwr_staged_bytes_total", (("direction", "in"), *label))] == 300
    assert samples[("lwr_staged_bytes_total", (("direction", "out"), *label))] == 50  # no links


def test_requests_are_counted_by_route_pattern(tmp_path: Path) -> None:
    metrics = AppMetrics(JobStore(tmp_path / "db"), {}, lambda: None)
    metrics.observe_request("/jobs/{job_id}/status", "GET", 200)
    metrics.observe_request("/jobs/{job_id}/status", "GET", 200)
    metrics.observe_request("unmatched", "GET", 404)
    samples = _samples(metrics)
    route = (("method", "GET"), ("route", "/jobs/{job_id}/status"), ("status", "200"))
    assert samples[("lwr_http_requests_total", route)] == 2
    assert (
        samples[
            (
                "lwr_http_requests_total",
                (("method", "GET"), ("route", "unmatched"), ("status", "404")),
            )
        ]
        == 1
    )


def test_a_pool_worker_exports_its_leases(tmp_path: Path) -> None:
    consumer = SimpleNamespace(
        manager=SimpleNamespace(name="m"), leases=[1, 2], slots=4, draining=True
    )
    group = SimpleNamespace(consumers=[consumer])
    metrics = AppMetrics(JobStore(tmp_path / "db"), {}, lambda: group)  # type: ignore[arg-type,return-value]
    samples = _samples(metrics)
    assert samples[("lwr_pool_jobs_held", (("manager", "m"),))] == 2
    assert samples[("lwr_pool_slots", (("manager", "m"),))] == 4
    assert samples[("lwr_pool_draining", (("manager", "m"),))] == 1
