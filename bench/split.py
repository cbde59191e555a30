"""``python -m bench.split``: the most a multi-process LWR could gain, measured before it is built.

LWR's throughput on a quiet two-core machine is bound by its one server process (a core's worth
of CPU at about 50 jobs/s, docs/benchmarks.md). The design that would lift that bound (several
server processes sharing one job store) is large; this bench measures its ceiling first. It runs,
in alternating rounds with the same client (``pulsar.client``, the urllib transport, the
throughput round's threads and jobs):

* ``one``: one LWR with ``slots`` concurrent jobs, as shipped;
* ``split``: two independent LWRs with half the slots each, the client's jobs alternating
  between them. No shared store, no routing, no coordination: no multi-process server can do
  better than this on the same machine, so it is the design's upper bound;
* ``pulsar``: Pulsar 0.16 with ``slots`` concurrent jobs;
* ``floor``: :mod:`bench.floor`'s server with ``slots`` slots, which does almost nothing: how
  busy this client and two job slots can keep the machine at all.

A job that fails is neither retried nor counted in jobs/s; the round says how many and why.

Each round records jobs/s, the load average it met, the CPU per job of every server tree
(:mod:`bench.cpu`) and of the client, and the cores the round kept busy (their product): on a
quiet machine, what a server could still gain from more processes is what it leaves idle.
Prints the rounds and the medians with the ratios to Pulsar, and writes
``bench/results/split.json``. Nothing here is part of ``python -m bench``: it answers one design
question and is kept so the answer can be checked again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import cpu, floor, measure
from bench.client import Driver, JobFailed, Poll
from bench.servers import BenchServer, LwrBench, PulsarBench

RESULTS = Path(__file__).resolve().parent / "results"
CONTESTANTS = ("one", "split", "pulsar", "floor")


def summarize(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per contestant the median jobs/s over rounds, and each median's ratio to Pulsar's."""
    rates = {
        name: [r["jobs_per_s"] for r in rounds if r["contestant"] == name] for name in CONTESTANTS
    }
    medians = {name: round(statistics.median(v), 1) for name, v in rates.items() if v}
    pulsar = medians.get("pulsar")
    ratios = {
        name: round(value / pulsar, 2)
        for name, value in medians.items()
        if pulsar and name != "pulsar"
    }
    return {"jobs_per_s": rates, "median_jobs_per_s": medians, "x_pulsar": ratios}


def _round(
    drivers: list[Driver], servers: list[BenchServer], jobs: int, threads: int, out: Path
) -> dict[str, Any]:
    """``jobs`` copy jobs over ``drivers`` in turn; jobs/s and the servers' summed CPU per job."""
    source = out / "in.txt"
    out.mkdir(parents=True)
    source.write_bytes(b"throughput\n")
    meters = [cpu.Meter(server.pid) for server in servers]
    for meter in meters:
        meter.start()

    def one(index: int) -> str | None:
        """None, or why the job failed: counted and shown, not retried, never hidden."""
        destination = out / f"o{index}.txt"
        try:
            drivers[index % len(drivers)].copy_job(f"{out.name}-{index}", source, destination)
        except JobFailed as failed:
            return str(failed)
        if destination.read_bytes() != b"throughput\n":
            return f"job {index}: wrong output"
        return None

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        failures = [why for why in pool.map(one, range(jobs)) if why]
    elapsed = time.perf_counter() - started
    per_server = [meter.stop(jobs) for meter in meters]
    done = jobs - len(failures)
    total_ms = (
        sum(c["server_ms"] + c["children_ms"] for c in per_server) + per_server[0]["client_ms"]
    )
    return {
        "jobs_per_s": round(done / elapsed, 1),
        # the cores this round kept busy (client, servers, jobs): CPU per job times the rate
        "cores_used": round(done / elapsed * total_ms / 1000.0, 2),
        "failed": failures,
        "server_ms": round(sum(c["server_ms"] for c in per_server), 2),
        "children_ms": round(sum(c["children_ms"] for c in per_server), 2),
        "client_ms": per_server[0]["client_ms"],
        "load_average": measure.load_average(),
    }


def _floor(directory: Path, slots: int) -> floor.FloorBench:
    server = floor.FloorBench(directory, slots)
    server.slots = slots
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per contestant per round")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--slots", type=int, default=2, help="concurrent jobs (split: half each)")
    args = parser.parse_args(argv)
    if args.slots < 2 or args.slots % 2:
        parser.error("--slots must be even and at least 2 (split halves it)")
    root = Path(tempfile.mkdtemp(prefix="lwr-bench-split-"))
    servers: dict[str, list[BenchServer]] = {
        "one": [LwrBench(root / "one", args.slots)],
        "split": [LwrBench(root / f"half{i}", args.slots // 2) for i in (1, 2)],
        "pulsar": [PulsarBench(root / "pulsar", args.slots)],
        "floor": [_floor(root / "floor", args.slots)],
    }
    every = [server for group in servers.values() for server in group]
    rounds: list[dict[str, Any]] = []
    try:
        for server in every:
            server.configure()
            server.start()
        for number in range(args.rounds):
            order = CONTESTANTS if number % 2 == 0 else tuple(reversed(CONTESTANTS))
            for name in order:
                group = servers[name]
                drivers = [Driver(server.url, "urllib", Poll()) for server in group]
                found = _round(drivers, group, args.jobs, args.threads, root / f"r{number}{name}")
                rounds.append({"contestant": name, "round": number, **found})
                print(
                    f"round {number + 1} {name}: {found['jobs_per_s']} jobs/s, server CPU "
                    f"{found['server_ms']} ms/job (+ job processes {found['children_ms']}, client "
                    f"{found['client_ms']}), {found['cores_used']} cores busy, "
                    f"load {found['load_average']}"
                    + (
                        f"; {len(found['failed'])} FAILED: {found['failed'][0]}"
                        if found["failed"]
                        else ""
                    ),
                    flush=True,
                )
    finally:
        for server in every:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    summary = summarize(rounds)
    print(f"medians (jobs/s): {summary['median_jobs_per_s']}; x Pulsar: {summary['x_pulsar']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "split.json").write_text(json.dumps({"rounds": rounds, **summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
