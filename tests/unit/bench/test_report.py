"""The arithmetic of bench/report.py: advantages, targets, flatness, fractions of references.

Every number here is worked out by hand in the test, so a wrong direction (LWR's time over
Pulsar's instead of the other way) or a wrong threshold shows as a failing assertion.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import report
from bench.report import Row


def doc(lwr: dict[str, Any], pulsar: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"results": {"lwr": lwr, "pulsar": pulsar}, "meta": {"plan": {"threads": 8}}, **extra}


def row(rows: list[Row], start: str) -> Row:
    """The one row whose metric is ``start`` or begins with it (an exact match wins)."""
    found = [r for r in rows if r.metric == start] or [
        r for r in rows if r.metric.startswith(start)
    ]
    assert len(found) == 1, [r.metric for r in rows]
    return found[0]


def test_a_time_advantage_is_pulsar_over_lwr() -> None:
    """Latency is lower-better: 20 ms against 60 ms is a 3x advantage, short of ">= 5x"."""
    rows = report.rows(doc({"latency": {"median_ms": 20}}, {"latency": {"median_ms": 60}}))
    latency = row(rows, "latency median")
    assert (latency.lwr, latency.pulsar, latency.advantage) == (20, 60, 3.0)
    assert (latency.target, latency.met) == (">= 5x", False)


def test_a_rate_advantage_is_lwr_over_pulsar_and_a_miss_is_reported() -> None:
    rows = report.rows(doc({"throughput": {"jobs_per_s": 50}}, {"throughput": {"jobs_per_s": 20}}))
    throughput = row(rows, "throughput (8 client threads, default")
    assert throughput.advantage == 2.5
    assert throughput.met is False


def test_advantages_are_rounded_to_two_places() -> None:
    rows = report.rows(doc({"latency": {"median_ms": 3}}, {"latency": {"median_ms": 10}}))
    assert row(rows, "latency median").advantage == 3.33


def test_a_missing_figure_gives_no_advantage_and_no_verdict() -> None:
    rows = report.rows(doc({"latency": {"median_ms": 20}}, {}))
    latency = row(rows, "latency median")
    assert (latency.pulsar, latency.advantage, latency.met) == (None, None, None)


def test_memory_target_is_strictly_better() -> None:
    """ "> 1x": equal memory does not meet it, any less does."""
    equal = row(report.rows(doc({"rss_idle_mib": 50}, {"rss_idle_mib": 50})), "memory idle")
    assert (equal.advantage, equal.target, equal.met) == (1.0, "> 1x", False)
    less = row(report.rows(doc({"rss_idle_mib": 40}, {"rss_idle_mib": 50})), "memory idle")
    assert (less.advantage, less.met) == (1.25, True)


def test_same_thread_rows_compare_their_own_servers() -> None:
    same = {
        "16": {"lwr": {"jobs_per_s": 30}, "pulsar": {"jobs_per_s": 10}},
        "4": {"lwr": {"jobs_per_s": 20}, "pulsar": {"jobs_per_s": 10}},
    }
    rows = report.rows(doc({}, {}, same_threads=same))
    four = row(rows, "throughput (8 client threads, both 4 server threads)")
    sixteen = row(rows, "throughput (8 client threads, both 16 server threads)")
    assert (four.advantage, four.met) == (2.0, False)
    assert (sixteen.advantage, sixteen.met) == (3.0, True)
    assert rows.index(four) < rows.index(sixteen)  # numeric order, not "16" < "4"


def test_retries_are_counted_per_server() -> None:
    retried = [
        {"server": "pulsar", "what": "throughput job 3"},
        {"server": "pulsar", "what": "history job 9"},
    ]
    retries = row(report.rows(doc({}, {}, peer_retries=retried)), "retries granted")
    assert (retries.lwr, retries.pulsar) == (0, 2)


def test_growth_is_last_over_first_and_flat_means_at_most_1_5() -> None:
    def levels(*ms: float) -> list[dict[str, Any]]:
        return [
            {"finished_jobs": n, "status": {"median_ms": m}, "restart_s": 1.0}
            for n, m in zip((100, 1000, 10000), ms, strict=False)
        ]

    rows = report.rows(doc({"scale": levels(1.0, 1.2, 1.5)}, {"scale": levels(1.0, 2, 4)}))
    growth = row(rows, "status growth N=100->10000")
    assert (growth.lwr, growth.pulsar, growth.met) == (1.5, 4.0, True)
    rows = report.rows(doc({"scale": levels(1.0, 1.2, 1.51)}, {"scale": levels(1, 1, 1)}))
    assert row(rows, "status growth").met is False
    assert row(rows, "restart growth").lwr == 1.0


def test_fractions_of_the_dd_ceiling() -> None:
    """Client curl MiB/s over the ``dd bs=16K`` reference's MiB/s, two places."""
    pulsar = {"curl": {"up_mib_per_s": 100.0, "down_mib_per_s": 100.0}}
    lwr = {"curl": {"up_mib_per_s": 900.0, "down_mib_per_s": 300.0}}
    document = doc({"staging": lwr}, {"staging": pulsar})
    document["results"]["reference"] = {"dd_16k": {"mib_per_s": 1000.0}}
    rows = report.rows(document)
    up = row(rows, "staging up (client curl) / dd bs=16K")
    down = row(rows, "staging down (client curl) / dd bs=16K")
    assert (up.lwr, up.pulsar, down.lwr, down.pulsar) == (0.9, 0.1, 0.3, 0.1)
    assert row(rows, "staging up (client curl)").advantage == 9.0


def test_paired_cp_fraction_target_is_half() -> None:
    staging = {"lwr-client": {"up_cp_fraction": 0.5, "down_cp_fraction": 0.49}}
    rows = report.rows(doc({"staging": staging}, {}))
    assert row(rows, "staging up (LWR client) / paired cp").met is True
    assert row(rows, "staging down (LWR client) / paired cp").met is False


@pytest.mark.parametrize(
    ("text", "value"),
    [(">= 3x", 3.0), (">= 0.5x", 0.5), ("> 1x", 1.0), ("", None), ("<= 1.5", None)],
)
def test_target_values_for_the_plot(text: str, value: float | None) -> None:
    assert report._target_value(text) == value


def test_the_table_formats_missing_values_and_verdicts() -> None:
    rows = [
        Row("a", "ms", 1.5, None, None, "", None),
        Row("b", "x", 123456.7, 2, 3.0, ">= 3x", True),
    ]
    lines = report.table(rows).splitlines()
    assert [cell.strip() for cell in lines[2].split("|")[3:8]] == ["1.5", "n/a", "", "", ""]
    assert "123457" in lines[3] and "3x" in lines[3] and "yes" in lines[3]


def test_fractions_of_the_client_ceiling_target_0_8() -> None:
    """Client curl MiB/s over the same transport's against the static server."""
    lwr = {"curl": {"up_mib_per_s": 400.0, "down_mib_per_s": 310.0}}
    pulsar = {"curl": {"up_mib_per_s": 50.0, "down_mib_per_s": 100.0}}
    document = doc({"staging": lwr}, {"staging": pulsar})
    document["results"]["reference"] = {
        "client_curl_ceiling": {
            "server": "nginx (nginx/1.22.1, sendfile on, WebDAV PUT)",
            "up_mib_per_s": 500.0,
            "down_mib_per_s": 400.0,
        }
    }
    rows = report.rows(document)
    up = row(rows, "staging up (client curl) / same client vs nginx (500 MiB/s)")
    down = row(rows, "staging down (client curl) / same client vs nginx (400 MiB/s)")
    assert (up.lwr, up.pulsar, up.met) == (0.8, 0.1, True)
    assert (down.lwr, down.pulsar, down.met) == (0.78, 0.25, False)


def test_no_ceiling_measured_gives_no_verdict() -> None:
    rows = report.rows(doc({"staging": {"curl": {"up_mib_per_s": 400.0}}}, {}))
    assert row(rows, "staging up (client curl) / same client").met is None


def test_mq_rows_latency_and_burst_throughput() -> None:
    mq = {
        "measured": True,
        "lwr": {"median_ms": 10.0, "burst": {"jobs": 200, "jobs_per_s": 80.0}},
        "pulsar": {"median_ms": 500.0, "burst": {"jobs": 200, "jobs_per_s": 4.0}},
    }
    rows = report.rows(doc({}, {}, mq_mode=mq))
    assert row(rows, "MQ latency median").advantage == 50.0
    burst = row(rows, "MQ throughput, burst of 200")
    assert (burst.lwr, burst.pulsar, burst.advantage) == (80.0, 4.0, 20.0)
