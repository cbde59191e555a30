"""``python -m bench.versus --before REV``: LWR's latency before and after a change, side by side.

On a shared machine an absolute figure says little: the load other work puts on the cores moves
every latency by a factor of two within minutes. So the two versions of LWR run at the same
time, with Pulsar and the latency floor (:mod:`bench.floor`), and take turns job by job, the
order reversed every round; each round records the load average it met. The *before* server is
LWR's ``lwr`` package at ``REV`` (``git archive``) put first on the server's ``PYTHONPATH``;
everything else (configuration, the client, the job) is this tree's. Prints each round and the
summary and writes ``bench/results/versus.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import floor, measure
from bench.client import Driver, Poll
from bench.measure import Failures
from bench.servers import BenchServer, LwrBench, PulsarBench

REPOSITORY = Path(__file__).resolve().parent.parent
RESULTS = REPOSITORY / "bench" / "results"


class BeforeLwr(LwrBench):
    """LWR served from the ``lwr`` package of another revision, extracted into ``source``."""

    name = "before"

    def __init__(self, directory: Path, concurrency: int, source: Path) -> None:
        super().__init__(directory, concurrency)
        self.source = source

    def command(self) -> list[str]:
        # the server's working directory is its own, so PYTHONPATH comes before this checkout
        return ["env", f"PYTHONPATH={self.source}", *super().command()]


def extract(revision: str, into: Path) -> Path:
    """The ``lwr`` package of ``revision`` written below ``into``; returns ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", revision, "lwr"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def summarize(rounds: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Per server: the median of its round medians, every round's median, and how many rounds
    each server was the fastest LWR of ``after`` and ``before`` (ties go to neither)."""
    out: dict[str, Any] = {}
    for name in names:
        medians = [r[name]["median_ms"] for r in rounds if r.get(name, {}).get("median_ms")]
        steps: dict[str, list[float]] = {}
        for r in rounds:
            for step, value in (r.get(name, {}).get("steps_median_ms") or {}).items():
                steps.setdefault(step, []).append(value)
        out[name] = {
            "median_of_rounds_ms": round(statistics.median(medians), 2) if medians else None,
            "rounds_ms": medians,
            "steps_median_ms": {k: round(statistics.median(v), 2) for k, v in steps.items()},
        }
    pairs = [
        (r["after"]["median_ms"], r["before"]["median_ms"])
        for r in rounds
        if r.get("after", {}).get("median_ms") and r.get("before", {}).get("median_ms")
    ]
    out["rounds_after_faster"] = sum(1 for after, before in pairs if after < before)
    out["rounds_before_faster"] = sum(1 for after, before in pairs if before < after)
    return out


def run(revision: str, rounds: int, jobs: int, trace: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lwr-versus-") as tmp:
        scratch = Path(tmp)
        source = extract(revision, scratch / "before-source")
        servers: dict[str, BenchServer] = {
            "after": LwrBench(scratch / "after", 2),
            "before": BeforeLwr(scratch / "before", 2, source),
            "pulsar": PulsarBench(scratch / "pulsar", 2),
            "floor": floor.FloorBench(scratch / "floor", 1),
        }
        results: list[dict[str, Any]] = []
        failures = Failures()
        try:
            for server in servers.values():
                if isinstance(server, LwrBench):
                    server.trace = trace
                server.configure()
                server.start()
            for index in range(rounds):
                order = list(servers)[:: -1 if index % 2 else 1]
                drivers = {n: Driver(servers[n].url, "urllib", Poll(0.005)) for n in order}
                load_before = measure.load_average()
                summary = measure.latency(drivers, jobs, scratch, failures)
                results.append({"load_average": [load_before, measure.load_average()], **summary})
                print(json.dumps({n: summary[n].get("median_ms") for n in order}), flush=True)
            process = floor.process_costs(2 * jobs, scratch)
        finally:
            for server in servers.values():
                server.stop()
    return {
        "before": revision,
        "rounds": results,
        "summary": summarize(results, list(servers)),
        "process_ms": process,
        "failures": failures.by_server,
    }


def run_cpu(revision: str, rounds: int, jobs: int, pulsar: bool) -> dict[str, Any]:
    """Throughput rounds of both LWRs (and the throughput floor, and Pulsar if asked), each
    round's CPU per job recorded (:mod:`bench.cpu`): the A/B of a change to the server's CPU."""
    from bench import throughput
    from bench.run import Plan

    plan = dataclasses.replace(Plan.quick(), throughput_jobs=jobs, throughput_rounds=rounds)
    with tempfile.TemporaryDirectory(prefix="lwr-versus-") as tmp:
        scratch = Path(tmp)
        source = extract(revision, scratch / "before-source")
        servers: dict[str, BenchServer] = {
            "after": LwrBench(scratch / "after", 2),
            "before": BeforeLwr(scratch / "before", 2, source),
            "floor": floor.FloorBench(scratch / "floor", 2),
        }
        servers["floor"].slots = 2  # type: ignore[attr-defined]
        if pulsar:
            servers["pulsar"] = PulsarBench(scratch / "pulsar", 2)
        failures = Failures()
        try:
            for server in servers.values():
                server.configure()
                server.start()
            summaries = throughput.rounds(plan, servers, scratch, failures)
        finally:
            for server in servers.values():
                server.stop()
    summary = {
        name: {
            "cpu": found["cpu"],
            "rounds_jobs_per_s": found["rounds"],
            "rounds_cpu": [r["cpu"] for r in found["round_details"]],
            "status_polls_per_job": [r["status_polls_per_job"] for r in found["round_details"]],
        }
        for name, found in summaries.items()
    }
    return {"before": revision, "mode": "cpu", "summary": summary, "failures": failures.by_server}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versus", description=__doc__)
    parser.add_argument("--before", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=15, help="jobs per server per round")
    parser.add_argument("--trace", action="store_true", help="both LWRs write lwr.trace")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="throughput rounds instead (--jobs per round, 8 client threads, 2 slots) with the "
        "CPU per job of client, server and its children; the floor too",
    )
    parser.add_argument("--pulsar", action="store_true", help="with --cpu: Pulsar's rounds too")
    args = parser.parse_args(argv)
    if args.cpu:
        document = run_cpu(args.before, args.rounds, args.jobs, args.pulsar)
    else:
        document = run(args.before, args.rounds, args.jobs, args.trace)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "versus.json").write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["summary"], indent=2))
    return 1 if document["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
