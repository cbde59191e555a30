"""``python -m bench [--quick] [--profile]``: LWR against Pulsar 0.16, side by side, in one run.

Exits 1 when any job of either server failed (a correctness check for CI); timings never fail
the run, they are reported against their targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from bench import WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results"

#: what the bench imports beyond LWR's test extra, by module name -> pip requirement
NEEDS = {"pycurl": "pycurl>=7.45", "matplotlib": "matplotlib>=3.7", "psutil": "psutil>=5.9"}


def ensure(modules: dict[str, str]) -> None:
    """pip-install into this interpreter whatever of ``modules`` is missing.

    A name that is not importable may be a program instead (py-spy): found beside the interpreter.
    """
    here = Path(sys.executable).parent
    missing = [
        req
        for module, req in modules.items()
        if importlib.util.find_spec(module) is None and not (here / module).exists()
    ]
    if missing:
        print(f"installing {', '.join(missing)} into {sys.prefix}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the small CI smoke run (under two minutes once Pulsar is installed)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of comparing, profile LWR alone under py-spy per workload",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=WORKLOADS,
        help="run only this workload (repeatable); the default runs them all",
    )
    parser.add_argument(
        "--server-threads",
        action="append",
        type=int,
        metavar="N",
        help="also compare throughput with both servers given N request threads (repeatable; "
        "the full run does 4 and 16, the quick one none)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="LWR writes its job trace: the per-phase breakdowns get the server's phases",
    )
    parser.add_argument(
        "--scale-max",
        type=int,
        metavar="N",
        help="scale levels go up tenfold to N finished jobs (e.g. 100000; default: 10,000 in "
        "the full run, 1,000 in the quick one)",
    )
    parser.add_argument(
        "--scale-real",
        type=int,
        metavar="N",
        help="scale history: N real jobs through the protocol, the rest cloned on disk from one "
        "of them (default 100; a large N makes every job real, as slow as that is)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help=f"where latest.json and ratios.png go (default {RESULTS})",
    )
    args = parser.parse_args(argv)
    ensure(NEEDS if not args.profile else {**NEEDS, "py-spy": "py-spy>=0.3"})

    from bench import cpu_report, report, run

    plan = run.Plan.quick() if args.quick else run.Plan.full()
    if args.only:
        plan = dataclasses.replace(plan, workloads=tuple(args.only))
    if args.trace:
        plan = dataclasses.replace(plan, trace=True)
    if args.server_threads:
        plan = dataclasses.replace(plan, same_threads=tuple(args.server_threads))
    if args.scale_max:
        from bench.history import levels_up_to

        plan = dataclasses.replace(
            plan, scale_levels=levels_up_to(plan.scale_levels, args.scale_max)
        )
    if args.scale_real:
        plan = dataclasses.replace(plan, scale_real=args.scale_real)
    args.results.mkdir(parents=True, exist_ok=True)
    if args.profile:
        document = run.profile_lwr(plan, args.results)
        (args.results / "profile.json").write_text(json.dumps(document, indent=2) + "\n")
        _print_profile(document)
        return 1 if document["failures"] else 0

    document = run.run(plan)
    table_rows = report.rows(document)
    document["ratios"] = report.as_dicts(table_rows)
    document["cpu_budget"] = cpu_report.budgets(document)
    (args.results / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    machine = document["meta"]["machine"]
    report.plot(
        table_rows,
        args.results / "ratios.png",
        f"LWR vs Pulsar 0.16 ({plan.mode} run, {machine['nproc']} cores, "
        f"{document['meta']['started'][:10]})",
    )
    print()
    print(report.table(table_rows))
    if report.floor_text(document):
        print(report.floor_text(document))
    if cpu_report.text(document):
        print(cpu_report.text(document))
    mq_mode = document["mq_mode"]
    if not mq_mode.get("measured"):
        print(f"\nMQ mode: {mq_mode['note']} ({mq_mode['reason']})")
    print(
        f"wrote {args.results / 'latest.json'} and {args.results / 'ratios.png'} "
        f"in {document['meta']['duration_s']} s"
    )
    if document["failed_jobs"]:
        print(f"\nFAILED: {document['failed_jobs']} job(s) failed:", file=sys.stderr)
        for server, items in document["failures"].items():
            for item in items[:10]:
                print(f"  {server}: {item['what']}: {item['error']}", file=sys.stderr)
        return 1
    return 0


def _print_profile(document: dict[str, object]) -> None:
    phases = document["phases"]
    assert isinstance(phases, dict)
    for phase, data in phases.items():
        profile = data["profile"]
        print(
            f"\n== {phase}: {profile['busy_seconds']} s busy in LWR's process; workload "
            f"{json.dumps(data['workload'])}"
        )
        print(f"  -- server ms per route: {json.dumps(data['server_ms_per_route'])}")
        print(f"  -- job life cycle: {json.dumps(data['job_lifecycle_ms'])}")
        for title in ("deepest_lwr_frame", "lwr_inclusive", "self"):
            print(f"  -- {title}")
            for entry in profile[title][:10]:
                print(f"    {entry['percent']:5.1f}%  {entry['seconds']:7.2f} s  {entry['where']}")


if __name__ == "__main__":
    sys.exit(main())
