"""The staging workload: one file up and down with every client, against both servers and
against the client's own ceiling (:mod:`bench.ceiling`), with ``cp`` as the physical reference."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import ceiling, measure
from bench.client import Driver, OwnClientDriver, Poll
from bench.measure import MIB, Failures
from bench.servers import BenchServer
from bench.throughput import step

if TYPE_CHECKING:
    from bench.run import Plan

TRANSPORTS = ("curl", "urllib")


def measure_all(
    plan: Plan, servers: dict[str, BenchServer], scratch: Path, failures: Failures
) -> dict[str, dict[str, Any]]:
    """One file up and down with every client, ``staging_runs`` times; ``cp`` as the reference.

    Runs alternate server by server and client by client, so a burst of other work on this
    shared machine lands on both; each figure is the median of its runs. Returns each server's
    figures by name, and the references under ``"reference"``.
    """
    results: dict[str, dict[str, Any]] = {name: {} for name in servers}
    step(f"staging {plan.staging_bytes // MIB} MiB x {plan.staging_runs}")
    source = scratch / "staging_input.dat"
    digest = measure.make_file(source, plan.staging_bytes)
    settle = measure.Settle(scratch, plan.staging_bytes, paired_cp=True)
    results["reference"] = {
        "cp": measure.cp_reference(source, settle),
        "dd_16k": measure.cp_reference(source, settle, measure.DD_16K),
    }
    labels = (*TRANSPORTS, "lwr-client", "curl-cli")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {label: [] for label in labels} for name in servers
    }
    ceiling_runs: list[dict[str, float]] = []
    with ceiling.static_server(scratch / "static") as (static_url, static_what):
        for index in range(plan.staging_runs):
            ceiling_runs.append(_ceiling_once(static_url, scratch, source, digest, failures))
            for name, server in servers.items():
                _round(plan, name, server, index, labels, runs, source, digest, settle,
                               failures)  # fmt: skip
    results["reference"]["client_curl_ceiling"] = {
        "server": static_what,
        **measure.staging_summary("curl", plan.staging_bytes, ceiling_runs),
    }
    for name in servers:
        results[name]["staging"] = {
            label: measure.staging_summary(label, plan.staging_bytes, runs[name][label])
            if runs[name][label]
            # a host without the curl program skips that reference rather than failing the run
            else {"transport": label, "skipped": "no curl program on PATH"}
            for label in labels
        }
    source.unlink()
    return results


def _round(
    plan: Plan,
    name: str,
    server: BenchServer,
    index: int,
    labels: tuple[str, ...],
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    source: Path,
    digest: str,
    settle: measure.Settle,
    failures: Failures,
) -> None:
    """One staging run of every client against one server."""
    poll = Poll(plan.latency_poll, timeout=600)
    for label in labels:
        if label == "curl-cli" and not shutil.which("curl"):
            continue
        driver: Driver | OwnClientDriver = (
            OwnClientDriver(server.url, poll)
            if label == "lwr-client"
            else Driver(server.url, "curl" if label == "curl-cli" else label, poll)
        )
        runs[name][label].append(
            measure.staging(
                driver, source, digest, settle, failures, name, index, label == "curl-cli"
            )
        )


def _ceiling_once(
    url: str, scratch: Path, source: Path, digest: str, failures: Failures
) -> dict[str, Any]:
    """One run of pulsar.client's curl transport against the static server (bench.ceiling)."""
    settle = measure.Settle(scratch, source.stat().st_size)
    try:
        up, down = ceiling.transfer_once(url, scratch / "static", source, digest, settle)
    except Exception as exc:
        failures.add("reference", "client ceiling (static server)", exc)
        return {"failed": True}
    return {"up_s": up, "down_s": down}


def profile_once(driver: Driver, plan: Plan, scratch: Path, failures: Failures) -> Any:
    source = scratch / "staging_input.dat"
    digest = measure.make_file(source, plan.staging_bytes)
    try:
        settle = measure.Settle(scratch, plan.staging_bytes)
        run = measure.staging(driver, source, digest, settle, failures, "lwr")
        return measure.staging_summary(driver.transport, plan.staging_bytes, [run])
    finally:
        source.unlink()
