"""bench.split's summary: medians per contestant and their ratios to Pulsar's."""

from __future__ import annotations

from bench.split import summarize


def _r(name: str, rate: float) -> dict[str, object]:
    return {"contestant": name, "jobs_per_s": rate}


def test_medians_and_ratios_to_pulsar() -> None:
    rounds = [_r("one", 50), _r("split", 80), _r("pulsar", 30), _r("one", 40)]
    rounds += [_r("split", 70), _r("pulsar", 20), _r("one", 60), _r("split", 90), _r("pulsar", 25)]
    found = summarize(rounds)
    assert found["median_jobs_per_s"] == {"one": 50, "split": 80, "pulsar": 25}
    assert found["x_pulsar"] == {"one": 2.0, "split": 3.2}
    assert found["jobs_per_s"]["split"] == [80, 70, 90]


def test_no_ratio_without_pulsar() -> None:
    found = summarize([_r("one", 50)])
    assert found["median_jobs_per_s"] == {"one": 50} and found["x_pulsar"] == {}
