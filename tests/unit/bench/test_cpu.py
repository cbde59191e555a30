"""CPU per job (bench/cpu.py, bench/cpu_report.py): the arithmetic by hand, the meter on real
processes, and the throughput floor's job slots through Galaxy's client.

The budget decides whether the report calls 3x Pulsar's throughput reachable on this machine,
so each figure is worked out here from round numbers; the meter is checked against processes
that really burn CPU, so a meter that stopped counting children (the jobs) fails here rather
than flattering a server in the bench.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import cpu, cpu_report, floor, report
from bench.client import Driver, Poll


def test_per_job_turns_seconds_over_jobs_into_milliseconds_per_job() -> None:
    found = cpu.per_job(client_s=0.5, server_s=2.0, children_s=1.0, jobs=100)
    assert found == {
        "jobs": 100,
        "client_ms": 5,
        "server_ms": 20,
        "children_ms": 10,
        "server_tree_ms": 30,
        "total_ms": 35,
    }
    assert cpu.per_job(1, 1, 1, 0) == {}


def test_combine_weighs_each_round_by_its_jobs() -> None:
    """100 jobs at 10 ms and 300 at 20 ms are 400 jobs at 17.5 ms, not the mean 15."""
    rounds = [cpu.per_job(0.1, 1.0, 0.0, 100), cpu.per_job(0.3, 6.0, 0.0, 300), {}]
    found = cpu.combine(rounds)
    assert (found["jobs"], found["server_ms"], found["client_ms"]) == (400, 17.5, 1)
    assert cpu.combine([{}]) == {}


def test_the_throughput_budget_on_two_cores() -> None:
    """Pulsar 25 jobs/s, 3x is 75 jobs/s: 2 cores give 26.67 ms of CPU per job in all."""
    servers = {
        # client 5 + jobs 5 leave 16.67 for the server; it spends 20: 30 ms in all, no fit
        "lwr": cpu.per_job(0.5, 2.0, 0.5, 100),
        # the floor: 3 + 1 leave 22.67; it spends 4: fits, 250 jobs/s on two cores
        "floor": cpu.per_job(0.3, 0.4, 0.1, 100),
    }
    found = cpu.budget(servers, pulsar_jobs_per_s=25, cores=2)
    assert (found["target_jobs_per_s"], found["budget_ms"]) == (75, 26.67)
    lwr, floor_ = found["servers"]["lwr"], found["servers"]["floor"]
    assert (lwr["client_and_jobs_ms"], lwr["left_for_server_ms"]) == (10, 16.67)
    assert (lwr["cpu_bound_jobs_per_s"], lwr["server_bound_jobs_per_s"]) == (66.7, 50)
    assert (lwr["client_bound_jobs_per_s"], lwr["reachable"]) == (200, False)
    assert (floor_["cpu_bound_jobs_per_s"], floor_["reachable"]) == (250, True)


def test_the_latency_budget_is_the_targets_milliseconds_less_a_lone_jobs_cpu() -> None:
    found = cpu.latency_budget(cpu.per_job(0.005, 0.012, 0.004, 1), pulsar_ms=100)
    assert (found["target_ms"], found["cpu_ms"], found["left_for_waits_ms"]) == (20, 21, -1)
    assert found["reachable"] is False
    assert cpu.latency_budget({"total_ms": 10.0}, pulsar_ms=100)["reachable"] is True


def _doc() -> dict[str, Any]:
    def tp(rate: float, spent: dict[str, float]) -> dict[str, Any]:
        return {"jobs_per_s": rate, "cpu": spent}

    return {
        "meta": {"machine": {"nproc": 2}, "plan": {"threads": 8}},
        "results": {
            "lwr": {
                "throughput": tp(40, cpu.per_job(0.5, 2.0, 0.5, 100)),
                "latency": {"median_ms": 30, "cpu": cpu.per_job(0.005, 0.015, 0.004, 1)},
            },
            "pulsar": {
                "throughput": tp(25, cpu.per_job(0.5, 2.0, 2.5, 100)),
                "latency": {"median_ms": 100, "cpu": cpu.per_job(0.01, 0.03, 0.02, 1)},
            },
            "floor": {
                "throughput": tp(100, cpu.per_job(0.3, 0.4, 0.1, 100)),
                "latency": {"median_ms": 15, "cpu": cpu.per_job(0.004, 0.004, 0.001, 1)},
            },
        },
    }


def _row(rows: list[report.Row], metric: str) -> report.Row:
    (found,) = [r for r in rows if r.metric == metric]
    return found


def test_the_cpu_rows_compare_lwr_with_pulsar_part_by_part_and_show_the_floor() -> None:
    rows = report.rows(_doc())
    server = _row(rows, "CPU per throughput job: server's own processes")
    assert (server.lwr, server.pulsar, server.advantage) == (20, 20, 1)
    children = _row(rows, "CPU per throughput job: server's children (job processes)")
    assert (children.lwr, children.pulsar, children.advantage) == (5, 25, 5)
    every = _row(rows, "CPU per throughput job, the floor server's (LWR column): all")
    assert (every.lwr, every.pulsar, every.advantage) == (8, 50, 6.25)
    lone = _row(rows, "CPU per lone latency job: all")
    assert (lone.lwr, lone.pulsar, lone.advantage) == (24, 60, 2.5)


def test_the_cpu_text_states_the_budget_and_each_servers_share() -> None:
    text = cpu_report.text(_doc())
    assert "3x Pulsar is 75 jobs/s; on 2 cores that leaves 26.67 ms of CPU per job" in text
    assert "lwr: client + job processes 10 ms, leaving 16.67 ms for a server that spends 20" in text
    assert "server 50.0 jobs/s); does not fit" in text
    assert "floor: client + job processes 4 ms" in text
    assert "latency, lwr: 5x Pulsar needs 20 ms; a lone job costs 24 ms of CPU, leaving -4" in text


def test_without_cpu_figures_there_are_no_cpu_rows_or_text() -> None:
    doc = _doc()
    for name in ("lwr", "pulsar", "floor"):
        for workload in ("throughput", "latency"):
            del doc["results"][name][workload]["cpu"]
    assert not [r for r in report.rows(doc) if r.metric.startswith("CPU")]
    assert cpu_report.text(doc) == ""


_BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


@pytest.mark.timeout(60)
def test_the_meter_counts_a_reaped_childs_cpu_as_the_trees_children() -> None:
    """A child that burns 0.3 s of CPU under a parent that reaps it: the parent's tree shows
    it as children's time; the parent's own time stays small."""
    parent_code = (
        f"import subprocess, sys, time\nsubprocess.run([sys.executable, '-c', {_BURN!r}])\n"
    )
    parent_code += "time.sleep(30)\n"
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        meter = cpu.Meter(parent.pid)
        meter.start()
        deadline = time.monotonic() + 30
        while cpu.tree_cpu(parent.pid).children_s < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        found = meter.stop(jobs=1)
    finally:
        parent.kill()
        parent.wait()
    assert found["children_ms"] >= 250
    assert found["server_ms"] < found["children_ms"]


@pytest.mark.timeout(60)
def test_the_meter_counts_a_live_descendants_own_cpu_as_the_servers() -> None:
    """gunicorn's worker is a live child of its master: its CPU is the server's own.

    The parent only waits; whatever CPU its child burns between two reads must show in the
    tree's own time (to a clock tick), however little of a core a loaded machine gives it.
    """
    import psutil

    code = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {_BURN!r}])\n"
    parent = subprocess.Popen([sys.executable, "-c", code.replace("0.3", "30")])
    try:
        deadline = time.monotonic() + 30
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        (burner,) = psutil.Process(parent.pid).children()
        before, burned_before = cpu.tree_cpu(parent.pid), burner.cpu_times()
        while burner.cpu_times().user - burned_before.user < 0.1 and time.monotonic() < deadline:
            time.sleep(0.05)
        after, burned_after = cpu.tree_cpu(parent.pid), burner.cpu_times()
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()
    burned = (burned_after.user + burned_after.system) - (burned_before.user + burned_before.system)
    assert burned >= 0.1
    assert (after - before).own_s >= burned - 0.02  # a tick either way


@pytest.mark.timeout(60)
def test_the_throughput_floor_runs_jobs_in_its_slots_through_galaxys_client(
    tmp_path: Path,
) -> None:
    """Eight jobs at once against two slots: each is queued, run in turn and answered."""
    from concurrent.futures import ThreadPoolExecutor

    server = floor.FloorBench(tmp_path / "floor", 2)
    server.slots = 2
    server.configure()
    server.start()
    try:
        assert "--slots" in server.command()
        source = tmp_path / "in.txt"
        source.write_bytes(b"a small input\n")
        driver = Driver(server.url, "urllib", Poll(0.005, timeout=30))

        def one(index: int) -> bytes:
            out = tmp_path / f"out{index}.txt"
            driver.copy_job(f"slot{index}", source, out)
            return out.read_bytes()

        with ThreadPoolExecutor(8) as pool:
            outputs = list(pool.map(one, range(8)))
        assert outputs == [source.read_bytes()] * 8
        assert driver.polls >= 8
    finally:
        server.stop()
