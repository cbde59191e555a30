"""The latency floor (bench/floor.py): its arithmetic by hand, and its server doing a real job.

The arithmetic decides whether the report calls 5x Pulsar reachable, so each figure is worked out
here from round numbers; the server is driven by Galaxy's own client, so a floor that stopped
doing the job (an empty output, a status that never completes) fails here, not as a flattering
number in the bench.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import floor, report
from bench.client import Driver, Poll


def test_a_target_above_the_floor_is_reachable_and_the_cut_is_a_share_of_lwrs_own_time() -> None:
    """Pulsar 100 ms, 5x needs 20 ms; floor 10, LWR 30: cut 10 of LWR's 20 above the floor."""
    found = floor.analysis(lwr_ms=30, pulsar_ms=100, floor_ms=10)
    assert found["target_ms"] == 20
    assert found["reachable"] is True
    assert found["best_possible_x"] == 10
    assert found["lwr_x"] == 3.33
    assert found["lwr_above_floor_ms"] == 20
    assert found["cut_needed_ms"] == 10
    assert found["cut_fraction"] == 0.5


def test_a_target_below_the_floor_is_unreachable_and_asks_more_than_lwrs_own_time() -> None:
    """Pulsar 60 ms, 5x needs 12 ms; floor 15: even a server doing nothing is only 4x."""
    found = floor.analysis(lwr_ms=25, pulsar_ms=60, floor_ms=15)
    assert (found["target_ms"], found["reachable"], found["best_possible_x"]) == (12, False, 4)
    assert found["cut_needed_ms"] == 13
    assert found["cut_fraction"] == 1.3


def test_a_met_target_asks_no_cut() -> None:
    found = floor.analysis(lwr_ms=10, pulsar_ms=100, floor_ms=8)
    assert (found["cut_needed_ms"], found["cut_fraction"]) == (0, None)


def _doc(lwr: float, pulsar: float, floor_ms: float) -> dict[str, Any]:
    return {
        "results": {
            "lwr": {"latency": {"median_ms": lwr}},
            "pulsar": {"latency": {"median_ms": pulsar}},
            "floor": {
                "analysis": floor.analysis(lwr, pulsar, floor_ms),
                "process_ms": {"command_ms": 1.5, "job_script_ms": 4.0},
                "request_ms": {"lwr": 0.8, "floor": 0.6},
            },
        },
        "meta": {"plan": {"threads": 8}},
    }


def _row(rows: list[report.Row], start: str) -> report.Row:
    (found,) = [r for r in rows if r.metric.startswith(start)]
    return found


def test_the_floor_rows_give_the_best_possible_advantage_and_each_servers_own_ms() -> None:
    rows = report.rows(_doc(lwr=25, pulsar=60, floor_ms=15))
    best = _row(rows, "latency floor")
    assert (best.lwr, best.pulsar, best.advantage) == (15, 60, 4)
    assert (best.target, best.met) == (">= 5x", False)
    above = _row(rows, "latency median above that floor (15 ms)")
    assert (above.lwr, above.pulsar, above.advantage) == (10, 45, 4.5)


def test_without_a_floor_there_are_no_floor_rows_or_text() -> None:
    doc = _doc(25, 60, 15)
    del doc["results"]["floor"]
    assert not [r for r in report.rows(doc) if "floor" in r.metric]
    assert report.floor_text(doc) == ""


def test_the_floor_text_says_unreachable_with_the_numbers() -> None:
    text = report.floor_text(_doc(lwr=25, pulsar=60, floor_ms=15))
    assert "5x Pulsar needs 12 ms (below the floor" in text
    assert "cut 13 ms, 130% of its time above the floor" in text
    assert "LWR's job script (bash + command) 4.0 ms" in text
    assert "lwr 0.8 ms, floor 0.6 ms" in text


@pytest.mark.timeout(60)
def test_the_floor_server_runs_the_latency_job_through_galaxys_client(tmp_path: Path) -> None:
    server = floor.FloorBench(tmp_path / "floor", 1)
    server.configure()
    server.start()
    try:
        source = tmp_path / "in.txt"
        source.write_bytes(b"a small input\n" * 20)
        driver = Driver(server.url, "urllib", Poll(0.005, timeout=30))
        steps = driver.copy_job("floor1", source, tmp_path / "out.txt")
        assert (tmp_path / "out.txt").read_bytes() == source.read_bytes()
        assert set(steps) == {"setup", "upload", "submit", "run+poll", "download", "clean"}
        assert floor.request_costs({"floor": server.url}, 3)["floor"] > 0
    finally:
        server.stop()
    assert not (tmp_path / "floor" / "jobs" / "floor1").exists()


def test_the_process_floor_runs_the_command_and_lwrs_job_script(tmp_path: Path) -> None:
    costs = floor.process_costs(2, tmp_path)
    assert set(costs) == {"command_ms", "job_script_ms"}
    assert all(value > 0 for value in costs.values())


def test_versus_summary_counts_rounds_each_lwr_won_and_takes_medians_of_rounds() -> None:
    from bench import versus

    def r(after: float, before: float, steps: float) -> dict[str, Any]:
        return {
            "after": {"median_ms": after, "steps_median_ms": {"setup": steps}},
            "before": {"median_ms": before, "steps_median_ms": {"setup": steps + 1}},
        }

    summary = versus.summarize([r(10, 12, 1), r(20, 18, 3), r(30, 30, 5)], ["after", "before"])
    assert summary["after"]["median_of_rounds_ms"] == 20
    assert summary["before"]["median_of_rounds_ms"] == 18
    assert summary["after"]["steps_median_ms"] == {"setup": 3}
    assert (summary["rounds_after_faster"], summary["rounds_before_faster"]) == (1, 1)


def test_versus_extracts_the_lwr_package_of_a_revision(tmp_path: Path) -> None:
    from bench import versus

    versus.extract("HEAD", tmp_path)
    assert (tmp_path / "lwr" / "managers" / "local.py").is_file()
