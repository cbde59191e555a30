"""Ratios against the targets: the table printed, the rows stored in JSON, the PNG.

Every ratio is LWR's *advantage*: how many times better LWR is than Pulsar on that metric (above
1 means LWR is better, whichever direction "better" is), so the table and the plot read the same
way for latencies, rates and memory alike. Targets are reported, never asserted. The table and
the plot are drawn by :mod:`bench.render`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import cpu_report
from bench.render import _target_value, as_dicts, plot, table

#: the rendering functions live in bench.render; callers use them through this module
__all__ = ["FLAT", "Row", "_target_value", "as_dicts", "floor_text", "plot", "rows", "table"]

#: a metric grows by at most this factor from the smallest to the largest N to count as flat
FLAT = 1.5
#: staging clients in table order, with their target (x Pulsar with the same client)
_TRANSPORTS = (("lwr-client", 10.0), ("curl", 10.0), ("urllib", None), ("curl-cli", None))
_LABELS = {"lwr-client": "LWR client", "curl-cli": "curl program"}


@dataclass(frozen=True)
class Row:
    metric: str
    unit: str
    lwr: float | None
    pulsar: float | None
    advantage: float | None
    target: str
    met: bool | None


Getter = Callable[[dict[str, Any]], float | None]


def _get(*keys: str | int) -> Getter:
    def getter(data: dict[str, Any]) -> float | None:
        value: Any = data
        for key in keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                return None
        return float(value) if isinstance(value, int | float) else None

    return getter


def _row(
    doc: dict[str, Any],
    metric: str,
    unit: str,
    get: Getter,
    higher_better: bool,
    target: float | None = None,
) -> Row:
    lwr, pulsar = get(doc["results"]["lwr"]), get(doc["results"]["pulsar"])
    advantage = None
    if lwr and pulsar:
        advantage = round(lwr / pulsar if higher_better else pulsar / lwr, 2)
    met = None if target is None or advantage is None else advantage >= target
    text = "" if target is None else (f">= {target:g}x" if target != 1 else "> 1x")
    if target == 1 and advantage is not None:
        met = advantage > 1
    return Row(metric, unit, lwr, pulsar, advantage, text, met)


def rows(doc: dict[str, Any]) -> list[Row]:
    """The table: one row per compared metric, then LWR against cp, then flatness in N."""
    out = [
        _row(doc, "latency median", "ms", _get("latency", "median_ms"), False, 5),
        _row(doc, "latency p90", "ms", _get("latency", "p90_ms"), False),
        *_floor_rows(doc),
        _row(
            doc,
            f"throughput ({_client_threads(doc)} client threads, default server threads)",
            "jobs/s",
            _get("throughput", "jobs_per_s"),
            True,
            3,
        ),
        *_same_thread_rows(doc),
        _retry_row(doc),
        *cpu_report.rows(doc),
    ]
    for transport, target in _TRANSPORTS:
        for way in ("up", "down"):
            label = _LABELS.get(transport, f"client {transport}")
            out.append(
                _row(
                    doc,
                    f"staging {way} ({label})",
                    "MiB/s",
                    _get("staging", transport, f"{way}_mib_per_s"),
                    True,
                    target,
                )
            )
    out += [
        _row(doc, "memory idle", "MiB", _get("rss_idle_mib"), False, 1),
        _row(doc, "memory after throughput", "MiB", _get("rss_after_throughput_mib"), False),
        _row(doc, "first start", "s", _get("first_start_s"), False),
    ]
    out += _mq_rows(doc)
    out += _ceiling_rows(doc)
    out += _cp_rows(doc)
    out += _scale_rows(doc)
    return out


def _floor_rows(doc: dict[str, Any]) -> list[Row]:
    """The latency floor (:mod:`bench.floor`): what 5x Pulsar asks against what no server saves.

    The first row is a server doing nothing but answer: its advantage is the best any server
    could have with this client, so "met" there says whether 5x is reachable at all. The second
    is each server's median minus the floor, the milliseconds that are the server's own.
    """
    found = (doc["results"].get("floor") or {}).get("analysis")
    if not found:
        return []
    floor, target = found["floor_ms"], found["target_x"]
    lwr, pulsar = (
        _get("latency", "median_ms")(doc["results"]["lwr"]),
        _get("latency", "median_ms")(doc["results"]["pulsar"]),
    )
    above_lwr = None if lwr is None else round(lwr - floor, 2)
    above_pulsar = None if pulsar is None else round(pulsar - floor, 2)
    return [
        Row(
            "latency floor: same client, a server doing nothing else (LWR column)",
            "ms",
            floor,
            pulsar,
            found["best_possible_x"],
            f">= {target:g}x",
            found["reachable"],
        ),
        Row(
            f"latency median above that floor ({floor:g} ms)",
            "ms",
            above_lwr,
            above_pulsar,
            round(above_pulsar / above_lwr, 2) if above_lwr and above_pulsar else None,
            "",
            None,
        ),
    ]


def floor_text(doc: dict[str, Any]) -> str:
    """One paragraph: what the latency target asks of LWR against the floor, in milliseconds."""
    floor = doc["results"].get("floor") or {}
    found = floor.get("analysis")
    if not found:
        return ""
    verdict = (
        "reachable: the target is above the floor"
        if found["reachable"]
        else "below the floor: no server reaches it with this client on this machine"
    )
    lines = [
        f"latency floor {found['floor_ms']:g} ms; {found['target_x']:g}x Pulsar needs "
        f"{found['target_ms']:g} ms ({verdict}); best possible {found['best_possible_x']}x, "
        f"LWR {found['lwr_x']}x, {found['lwr_above_floor_ms']:g} ms above the floor",
    ]
    if found["cut_needed_ms"]:
        share = found["cut_fraction"]
        lines.append(
            f"the target asks LWR to cut {found['cut_needed_ms']:g} ms"
            + ("" if share is None else f", {share:.0%} of its time above the floor")
        )
    process = floor.get("process_ms") or {}
    if process:
        lines.append(
            f"the job's process alone: the command {process.get('command_ms')} ms, LWR's job "
            f"script (bash + command) {process.get('job_script_ms')} ms"
        )
    requests = floor.get("request_ms") or {}
    if requests:
        lines.append(
            "one GET /healthz on a new connection (urllib): "
            + ", ".join(f"{name} {ms:g} ms" for name, ms in requests.items())
        )
    return "\n".join(lines)


def _client_threads(doc: dict[str, Any]) -> int | str:
    return doc.get("meta", {}).get("plan", {}).get("threads", "?")


def _same_thread_rows(doc: dict[str, Any]) -> list[Row]:
    """Throughput with both servers given the same number of request threads (fresh servers)."""
    out = []
    clients = _client_threads(doc)
    for threads, results in sorted((doc.get("same_threads") or {}).items(), key=_numeric_key):
        metric = f"throughput ({clients} client threads, both {threads} server threads)"
        out.append(_row({"results": results}, metric, "jobs/s", _get("jobs_per_s"), True, 3))
    return out


def _numeric_key(item: tuple[str, Any]) -> tuple[int, str]:
    return (int(item[0]) if item[0].isdigit() else 0, item[0])


def _retry_row(doc: dict[str, Any]) -> Row:
    """Runs the harness granted again (Pulsar's exec race, return code 126), per server: a retry
    one server gets and the other does not is part of the comparison."""
    retried = doc.get("peer_retries") or []
    counts = {
        name: float(sum(1 for r in retried if r.get("server", "pulsar") == name))
        for name in ("lwr", "pulsar")
    }
    return Row(
        "retries granted by the harness", "runs", counts["lwr"], counts["pulsar"], None, "", None
    )


def _mq_rows(doc: dict[str, Any]) -> list[Row]:
    """Message-queue mode, when it was measured (a job without files, publish to final status)."""
    mq = doc.get("mq_mode") or {}
    if not mq.get("measured"):
        return []
    lwr, pulsar = _get("lwr", "median_ms")(mq), _get("pulsar", "median_ms")(mq)
    advantage = round(pulsar / lwr, 2) if lwr and pulsar else None
    out = [Row("MQ latency median (true, no files)", "ms", lwr, pulsar, advantage, "", None)]
    jobs = _get("lwr", "burst", "jobs")(mq) or _get("pulsar", "burst", "jobs")(mq)
    if jobs:
        lwr, pulsar = (_get(name, "burst", "jobs_per_s")(mq) for name in ("lwr", "pulsar"))
        advantage = round(lwr / pulsar, 2) if lwr and pulsar else None
        metric = f"MQ throughput, burst of {jobs:g} (true, no files)"
        out.append(Row(metric, "jobs/s", lwr, pulsar, advantage, "", None))
    return out


#: LWR's staging through pulsar.client's curl transport, as a fraction of that client's ceiling
CEILING_TARGET = 0.8


def _ceiling_rows(doc: dict[str, Any]) -> list[Row]:
    """Staging with pulsar.client's curl transport over the same transport's MiB/s against a
    static file server (:mod:`bench.ceiling`): how close each server gets to the client's own
    limit on this machine (target: LWR within 80% of it, both ways)."""
    reference = doc["results"].get("reference", {}).get("client_curl_ceiling") or {}
    server = str(reference.get("server", "static server")).split(" (")[0]
    out = []
    for way in ("up", "down"):
        ceiling = _get(f"{way}_mib_per_s")(reference)
        get = _get("staging", "curl", f"{way}_mib_per_s")
        lwr, pulsar = get(doc["results"]["lwr"]), get(doc["results"]["pulsar"])
        fraction = round(lwr / ceiling, 2) if lwr and ceiling else None
        out.append(
            Row(
                f"staging {way} (client curl) / same client vs {server} ({ceiling or 0:g} MiB/s)",
                "fraction",
                fraction,
                round(pulsar / ceiling, 2) if pulsar and ceiling else None,
                None,
                f">= {CEILING_TARGET:g} (LWR)",
                None if fraction is None else fraction >= CEILING_TARGET,
            )
        )
    return out


def _cp_rows(doc: dict[str, Any]) -> list[Row]:
    """Staging with either client as a fraction of ``cp`` (target: within 2x, i.e. >= 0.5).

    Each transfer is compared with a ``cp`` of the same bytes timed just before it
    (:class:`bench.measure.Settle`); the median of those fractions is shown.
    """
    out = []
    for transport, way in itertools.product(("lwr-client", "curl"), ("up", "down")):
        get = _get("staging", transport, f"{way}_cp_fraction")
        lwr, pulsar = get(doc["results"]["lwr"]), get(doc["results"]["pulsar"])
        out.append(
            Row(
                f"staging {way} ({_LABELS.get(transport, 'client ' + transport)}) / paired cp",
                "fraction of cp",
                lwr,
                pulsar,
                None,
                ">= 0.5 (LWR)",
                None if lwr is None else lwr >= 0.5,
            )
        )
    # pulsar.client's curl transport writes what libcurl hands it, 16 KiB at a time: its ceiling
    # here is a user-space copy in 16 KiB pieces with no network at all
    ceiling = _get("dd_16k", "mib_per_s")(doc["results"].get("reference", {}))
    for way in ("up", "down"):
        get = _get("staging", "curl", f"{way}_mib_per_s")
        lwr, pulsar = get(doc["results"]["lwr"]), get(doc["results"]["pulsar"])
        out.append(
            Row(
                f"staging {way} (client curl) / dd bs=16K ({ceiling or 0:g} MiB/s)",
                "fraction",
                round(lwr / ceiling, 2) if lwr and ceiling else None,
                round(pulsar / ceiling, 2) if pulsar and ceiling else None,
                None,
                "",
                None,
            )
        )
    return out


def _scale_rows(doc: dict[str, Any]) -> list[Row]:
    lwr_levels = doc["results"]["lwr"].get("scale") or []
    out = []
    for index, level in enumerate(lwr_levels):
        n = level["finished_jobs"]
        out.append(
            _row(
                doc,
                f"status, {n} finished jobs",
                "ms",
                _get("scale", index, "status", "median_ms"),
                False,
            )
        )
        out.append(
            _row(doc, f"restart, {n} finished jobs", "s", _get("scale", index, "restart_s"), False)
        )
    if len(lwr_levels) >= 2:
        first, last = lwr_levels[0]["finished_jobs"], lwr_levels[-1]["finished_jobs"]
        for what, keys in (("status", ("status", "median_ms")), ("restart", ("restart_s",))):
            growth = {
                name: _growth(doc["results"][name].get("scale") or [], keys)
                for name in ("lwr", "pulsar")
            }
            out.append(
                Row(
                    f"{what} growth N={first}->{last}",
                    "x (1 = flat)",
                    growth["lwr"],
                    growth["pulsar"],
                    None,
                    f"<= {FLAT:g} (LWR)",
                    None if growth["lwr"] is None else growth["lwr"] <= FLAT,
                )
            )
    return out


def _growth(levels: list[dict[str, Any]], keys: tuple[str, ...]) -> float | None:
    if len(levels) < 2:
        return None
    first, last = _get(*keys)(levels[0]), _get(*keys)(levels[-1])
    return round(last / first, 2) if first and last else None
