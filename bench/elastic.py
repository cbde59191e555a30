"""``python -m bench.elastic``: how long the balancer takes from a burst to a full pool.

Starts a balancer site (tests/integration/balancer/site.py: real RabbitMQ, real LWR workers from
the local driver, Galaxy's client), lets the pool settle at its idle row, publishes a burst and
reports: seconds until the balancer decided the table's max, until every worker of the full pool
consumed the queue, until the last job completed, and until the pool was back to its idle row.
Writes ``results/elastic.json`` and the load and pool plot ``results/elastic_burst.png``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def plot_history(history: list[dict[str, Any]], burst_at: float, path: Path) -> None:
    """Load and pool size over time (seconds from the burst) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [entry["time"] - burst_at for entry in history]
    figure, load_axis = plt.subplots(figsize=(7, 3.5))
    load_axis.plot(times, [e["load"] for e in history], "o-", color="tab:orange", label="load")
    load_axis.set_xlabel("seconds from the burst")
    load_axis.set_ylabel("load (jobs/s arriving)")
    pool_axis = load_axis.twinx()
    pool_axis.step(times, [e["actual"] for e in history], where="post", label="pool (workers)")
    pool_axis.step(
        times,
        [e["max"] for e in history],
        where="post",
        linestyle=":",
        color="grey",
        label="row max",
    )
    pool_axis.set_ylabel("workers")
    pool_axis.set_ylim(0, max(e["max"] for e in history) + 1)
    load_axis.axvline(0, color="red", linewidth=0.8)
    lines = load_axis.get_legend_handles_labels()
    more = pool_axis.get_legend_handles_labels()
    load_axis.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right")
    figure.suptitle("lwr balancer: a burst of 60 jobs (poll_interval 0.05 min)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def measure(directory: Path, jobs: int, seconds: float) -> dict[str, float]:
    from tests.integration.amqp.support import Client, delete_queues
    from tests.integration.balancer.site import BalancerSite, wait_for

    site = BalancerSite(directory)
    client = None
    try:
        site.start()
        wait_for(lambda: len(site.workers()) == 1, 60, site.log)
        client = Client(site.manager)
        start = time.time()
        for i in range(jobs):
            client.setup(f"j{i}", f"sleep {seconds}; echo {i}")
        top = max(row.max for row in _rows(site))
        wait_for(lambda: any(d["after"] == top for d in site.history()), 120, site.log)
        decided = time.time() - start
        wait_for(lambda: _consuming(site) >= top, 120, site.log)
        full = time.time() - start
        for i in range(jobs):
            client.wait_status(f"j{i}", "complete", timeout=300)
        done = time.time() - start
        wait_for(lambda: site.status().get("pool") == 1 and len(site.workers()) == 1, 120)
        idle = time.time() - start
        plot_history(site.history(), start, RESULTS / "elastic_burst.png")
        return {
            "decided_max_s": decided,
            "full_pool_s": full,
            "burst_done_s": done,
            "idle_row_s": idle,
            "jobs": jobs,
            "poll_interval_s": 3.0,
        }
    finally:
        if client is not None:
            client.close()
        site.stop()
        site.cleanup()
        delete_queues(site.manager)


def _consuming(site: Any) -> int:
    """Workers whose log says they consume the pool's queue (up, not merely started)."""
    logs = (site.state / "workers").glob("*/worker.log")
    return sum("consuming" in log.read_text(errors="replace") for log in logs)


def _rows(site: Any) -> list[Any]:
    from lwr.balancer.config import load_balancer_config

    return list(load_balancer_config(site.directory / "balancer.ini").table.rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.elastic", description=__doc__)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=0.5, help="each job sleeps this long")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lwr-elastic-") as directory:
        result = measure(Path(directory), args.jobs, args.seconds)
    (RESULTS / "elastic.json").write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        print(f"{key:16} {value:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
