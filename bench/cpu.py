"""CPU seconds per job: the client's process, each server's process tree and what it forked.

Wall-clock figures on this shared two-core machine move with whatever else runs; CPU time does
not (much): a job costs its client, its server and its own processes so many CPU milliseconds
whatever the load. So beside every throughput round (and the latency jobs) the bench records:

* **client**: the CPU time of the bench's own process (``pulsar.client`` in its threads), read
  with ``psutil`` around the round; the bench does nothing else meanwhile;
* **server**: the CPU time of the server process and every live process below it (gunicorn's
  master and its worker for Pulsar), their own user + system time;
* **children**: the CPU time of the processes the server tree forked and reaped (the jobs: bash,
  the job script, ``cp``; anything else a server runs per job), from the kernel's
  ``children_user``/``children_system`` of every live process of the tree.

Not counted: the kernel's own threads (deferred ``discard`` of deleted files, writeback).

:func:`budget` turns the per-job figures into what a throughput target means on ``cores`` cores:
the CPU a job may cost in all at that rate, against what the client and the job's processes alone
already cost; :func:`latency_budget` does the same for a latency target, one job at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class TreeCpu:
    """CPU seconds of a process tree so far: its live processes' own, their reaped children's."""

    own_s: float
    children_s: float

    def __sub__(self, earlier: TreeCpu) -> TreeCpu:
        return TreeCpu(self.own_s - earlier.own_s, self.children_s - earlier.children_s)


def tree_cpu(pid: int) -> TreeCpu:
    """The CPU seconds of ``pid`` and its live descendants, and of the children they reaped.

    A job still running when this is read counts as the server's own time (it is a live
    descendant); read between rounds, when no job runs, so that does not happen. A process that
    ends between two reads moves from ``own`` to its parent's ``children``: the sum of both
    differences stays right.
    """
    root = psutil.Process(pid)
    own = children = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        own += times.user + times.system
        children += times.children_user + times.children_system
    return TreeCpu(own, children)


def client_cpu() -> float:
    """CPU seconds of this process so far, all its threads (user + system, not its children).

    ``time.process_time`` reads the kernel's nanosecond count; psutil's figures, used for the
    servers as only they cover other processes and reaped children, move in clock ticks (10 ms).
    """
    return time.process_time()


class Meter:
    """CPU used by the client and one server tree between :meth:`start` and :meth:`stop`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._client = 0.0
        self._tree = TreeCpu(0.0, 0.0)

    def start(self) -> None:
        self._tree = tree_cpu(self.pid)
        self._client = client_cpu()

    def stop(self, jobs: int, client_s: float | None = None) -> dict[str, float]:
        """Per-job CPU milliseconds since :meth:`start` (:func:`per_job`).

        Waits first (up to ``settle_s``) until the tree's CPU stops growing: work a server does
        after its last answer (LWR deletes cleaned job directories in the background) belongs
        to these jobs. ``client_s`` replaces the client's CPU read from this process (the
        latency jobs' client time, counted per job as the servers alternate).
        """
        client = client_cpu() - self._client if client_s is None else client_s
        tree = settled(self.pid) - self._tree
        return per_job(client, tree.own_s, tree.children_s, jobs)


def settled(pid: int, quiet_s: float = 0.002, step_s: float = 0.1, limit_s: float = 3.0) -> TreeCpu:
    """:func:`tree_cpu` once it grows by under ``quiet_s`` in ``step_s`` (at most ``limit_s``)."""
    last = tree_cpu(pid)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(step_s)
        now = tree_cpu(pid)
        grown = (now.own_s + now.children_s) - (last.own_s + last.children_s)
        last = now
        if grown < quiet_s:
            break
    return last


def per_job(client_s: float, server_s: float, children_s: float, jobs: int) -> dict[str, float]:
    """CPU milliseconds per job from CPU seconds spent over ``jobs`` jobs."""
    if jobs <= 0:
        return {}
    scale = 1000.0 / jobs
    client, server, children = client_s * scale, server_s * scale, children_s * scale
    return {
        "jobs": jobs,
        "client_ms": round(client, 2),
        "server_ms": round(server, 2),
        "children_ms": round(children, 2),
        "server_tree_ms": round(server + children, 2),
        "total_ms": round(client + server + children, 2),
    }


def combine(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Several rounds' per-job figures as one: every CPU millisecond over every job."""
    done = [r for r in rounds if r.get("jobs")]
    jobs = sum(int(r["jobs"]) for r in done)
    if not jobs:
        return {}
    spent = {
        key: sum(r[key] * r["jobs"] for r in done) / 1000.0
        for key in ("client_ms", "server_ms", "children_ms")
    }
    return per_job(spent["client_ms"], spent["server_ms"], spent["children_ms"], jobs)


def describe(cpu: dict[str, float]) -> str:
    """One line of per-job figures, for the bench's progress output."""
    if not cpu:
        return "n/a"
    return (
        f"client {cpu['client_ms']:g}, server {cpu['server_ms']:g} + its children "
        f"{cpu['children_ms']:g}, total {cpu['total_ms']:g}"
    )


def budget(
    servers: dict[str, dict[str, float]],
    pulsar_jobs_per_s: float,
    cores: int,
    target: float = 3.0,
) -> dict[str, Any]:
    """What ``target`` x Pulsar's throughput asks in CPU per job on ``cores`` cores.

    ``servers`` maps a name (``lwr``, ``pulsar``, ``floor``) to its :func:`per_job` figures.
    At ``target_jobs_per_s`` the whole machine has ``budget_ms`` of CPU per job for everything:
    client, server and the job's processes. Per server:

    * ``cpu_bound_jobs_per_s``: the rate at which its jobs' whole CPU fills every core (no
      server, however it waits, is faster than this on this machine with this client);
    * ``client_bound_jobs_per_s``: the rate at which the client's process fills one core (one
      Python process: its threads share one interpreter lock, so it can hardly use more);
    * ``server_bound_jobs_per_s``: the same for the server's own CPU (LWR is one Python process;
      Pulsar's gunicorn runs one worker, so the same holds for both);
    * ``left_for_server_ms``: the budget less the client and the job's processes, what the
      server itself may spend per job at the target (negative: unreachable whatever it does).

    ``reachable`` (per server) says whether its client plus job processes plus server fit the
    budget; the floor's entry says whether any server could, as the floor's server does almost
    nothing.
    """
    target_rate = target * pulsar_jobs_per_s
    budget_ms = 1000.0 * cores / target_rate if target_rate > 0 else 0.0
    out: dict[str, Any] = {
        "target_x": target,
        "cores": cores,
        "pulsar_jobs_per_s": pulsar_jobs_per_s,
        "target_jobs_per_s": round(target_rate, 2),
        "budget_ms": round(budget_ms, 2),
        "servers": {},
    }
    for name, cpu in servers.items():
        if not cpu.get("total_ms"):
            continue
        fixed = cpu["client_ms"] + cpu["children_ms"]
        out["servers"][name] = {
            "cpu_bound_jobs_per_s": round(1000.0 * cores / cpu["total_ms"], 1),
            "client_bound_jobs_per_s": _one_core(cpu["client_ms"]),
            "server_bound_jobs_per_s": _one_core(cpu["server_ms"]),
            "client_and_jobs_ms": round(fixed, 2),
            "left_for_server_ms": round(budget_ms - fixed, 2),
            "server_ms": cpu["server_ms"],
            "reachable": cpu["total_ms"] <= budget_ms,
        }
    return out


def _one_core(ms_per_job: float) -> float | None:
    """Jobs per second at which ``ms_per_job`` of CPU fills one core."""
    return round(1000.0 / ms_per_job, 1) if ms_per_job > 0 else None


def latency_budget(cpu: dict[str, float], pulsar_ms: float, target: float = 5.0) -> dict[str, Any]:
    """What ``target`` x Pulsar's latency leaves beside a job's CPU, one job at a time.

    A lone job's steps run one after another (the client waits for each answer), so its latency
    is at least the CPU its client, server and processes spend on it, whatever the cores:
    ``reachable`` is False when that CPU alone is more than the target's milliseconds.
    """
    target_ms = pulsar_ms / target
    total = cpu.get("total_ms", 0.0)
    return {
        "target_x": target,
        "target_ms": round(target_ms, 2),
        "cpu_ms": total,
        "left_for_waits_ms": round(target_ms - total, 2),
        "reachable": total <= target_ms,
    }
