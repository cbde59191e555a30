"""bench/trace.py and the summaries of bench/measure.py: phases, shares and percentiles by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench import measure, parallel, trace

CLIENT = {"start": 0.0, "setup": 1.0, "upload": 2.0, "submit": 3.0, "run+poll": 10.0,
          "download": 11.0, "clean": 12.0}  # fmt: skip
SERVER = {"queued": 2.5, "dispatched": 4.0, "process started": 4.5, "process ended": 8.0,
          "recorded complete": 8.5, "answered complete": 9.5}  # fmt: skip


def test_traced_phases_follow_each_other_and_add_up_to_the_job() -> None:
    phases = trace.job_phases(CLIENT, SERVER)
    assert phases == {
        "setup": 1.0,
        "upload": 1.0,
        "submit -> queued": 0.5,
        "queued -> dispatched": 1.5,
        "dispatched -> process started": 0.5,
        "process run": 3.5,
        "process ended -> recorded complete": 0.5,
        "recorded -> status answered complete": 1.0,
        "answered -> client sees complete": 0.5,
        "download": 1.0,
        "clean": 1.0,
    }
    assert sum(phases.values()) == CLIENT["clean"] - CLIENT["start"]


def test_without_a_server_trace_the_client_steps_are_the_phases() -> None:
    phases = trace.job_phases(CLIENT, None)
    assert phases == {"setup": 1.0, "upload": 1.0, "submit": 1.0, "run + poll": 7.0,
                      "download": 1.0, "clean": 1.0}  # fmt: skip


def test_a_job_missing_a_mark_is_left_out() -> None:
    assert trace.job_phases(CLIENT, {k: v for k, v in SERVER.items() if k != "queued"}) is None
    result = trace.breakdown({"a": CLIENT, "b": {"start": 0.0}})
    assert result["jobs"] == 1


def test_breakdown_medians_shares_and_slowest() -> None:
    slow = {k: v * 3 for k, v in CLIENT.items()}
    result = trace.breakdown({"fast": CLIENT, "slow": slow})
    run = result["phases"]["run + poll"]
    assert (run["median_ms"], run["max_ms"]) == (14000.0, 21000.0)
    # run + poll is 7 of every 12 seconds of both jobs
    assert run["share"] == round(7 / 12, 3)
    assert result["slowest"][0] == {
        "job_id": "slow",
        "total_ms": 36000.0,
        "largest": "run + poll",
        "largest_ms": 21000.0,
    }


def test_dispatch_delay_counts_from_the_slot_freed_or_the_queueing() -> None:
    server = {
        # a ends at 5.0 and frees its slot; b, queued at 1.0, is dispatched at 5.2
        "a": {"queued": 0.0, "dispatched": 0.1, "recorded complete": 5.0},
        "b": {"queued": 1.0, "dispatched": 5.2, "recorded complete": 9.0},
        # c is queued after the last slot freed and dispatched 0.05 s later
        "c": {"queued": 9.5, "dispatched": 9.55},
    }
    delays = trace.dispatch_delays(server)
    assert delays["n"] == 3
    assert delays["max_ms"] == pytest.approx(200.0)
    assert delays["over_100ms"] == 1


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.5, 5), (0.9, 9), (1.0, 10), (0.0, 1), (0.95, 10), (0.91, 10)]
)
def test_percentile_is_a_measured_value_by_nearest_rank(fraction: float, expected: int) -> None:
    assert measure.percentile([float(v) for v in range(10, 0, -1)], fraction) == expected


def test_staging_summary_takes_medians_and_cp_fractions() -> None:
    mib = measure.MIB
    runs = [
        {"up_s": 1.0, "down_s": 2.0, "cp_up_s": 0.5, "cp_down_s": 0.5},
        {"up_s": 2.0, "down_s": 4.0, "cp_up_s": 0.5, "cp_down_s": 2.0},
        {"up_s": 4.0, "down_s": 1.0, "cp_up_s": 1.0, "cp_down_s": 0.5},
        {"failed": True},
    ]
    summary = measure.staging_summary("curl", 100 * mib, runs)
    assert (summary["runs"], summary["up_s"], summary["down_s"]) == (3, 2.0, 2.0)
    assert (summary["up_mib_per_s"], summary["down_mib_per_s"]) == (50.0, 50.0)
    # per run cp/transfer: up 0.5, 0.25, 0.25 -> 0.25; down 0.25, 0.5, 0.5 -> 0.5
    assert (summary["up_cp_fraction"], summary["down_cp_fraction"]) == (0.25, 0.5)


def test_percentile_rank_survives_float_error() -> None:
    """0.9 * 30 is 27.000000000000004 in floating point: still the 27th value."""
    assert measure.percentile([float(v) for v in range(1, 31)], 0.9) == 27


def test_request_times_are_in_to_out_per_route() -> None:
    server = {
        "a": {"in GET /s": 1.0, "out GET /s": 1.002, "in POST /jobs": 0.5, "out POST /jobs": 0.6},
        "b": {"in GET /s": 2.0, "out GET /s": 2.004, "in DELETE /x": 3.0},
    }
    assert trace.request_times(server) == {"GET /s": 3.0, "POST /jobs": 100.0}


def _flaky(failures_before_success: int) -> tuple[list[int], Callable[..., None]]:
    calls: list[int] = []

    def work(index: int, attempt: int = 0) -> None:
        assert attempt == len(calls)  # each retry asks for a fresh job id
        calls.append(index)
        if len(calls) <= failures_before_success:
            raise RuntimeError("job ended 'complete' (return code 126): ''")

    return calls, work


def test_pulsar_exec_race_is_retried_and_every_retry_is_recorded() -> None:
    failures = measure.Failures()
    calls, work = _flaky(2)
    assert parallel.run_parallel(work, [7], 1, failures, "pulsar", "job") == 1
    assert len(calls) == 3
    assert [r["server"] for r in failures.retried] == ["pulsar", "pulsar"]
    assert failures.count() == 0


def test_retries_are_bounded_and_never_granted_to_lwr() -> None:
    failures = measure.Failures()
    calls, work = _flaky(10)
    assert parallel.run_parallel(work, [1], 1, failures, "pulsar", "job") == 0
    assert len(calls) == 1 + parallel.PEER_RETRIES
    assert failures.count() == 1
    failures = measure.Failures()
    calls, work = _flaky(1)
    assert parallel.run_parallel(work, [1], 1, failures, "lwr", "job") == 0
    assert (len(calls), failures.retried, failures.count()) == (1, [], 1)
