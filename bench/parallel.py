"""Jobs run on a pool of client threads, with the one retry the harness grants: Pulsar's.

Every job that fails is recorded (``Failures``) instead of raising, so one bad job neither hides
the others' numbers nor stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.measure import Failures

#: how many times a job that hit Pulsar's exec race is run again (each retry is reported)
PEER_RETRIES = 2
#: one job of a parallel run: ``work(index, attempt)``, attempt 0 first, then retries
Work = Callable[..., None]


def _retried(
    work: Work,
    index: int,
    error: BaseException | None,
    failures: Failures,
    server: str,
    what: str,
) -> BaseException | None:
    """Run a Pulsar job again while it fails with its exec race; the last error, or None.

    Pulsar 0.16 sometimes execs its job script while another thread still holds it open for
    writing ("Text file busy", return code 126): a flaw of the peer, not of this benchmark, and
    one LWR is never granted. Every retry is recorded in ``failures.retried`` for the report.
    A retry runs under a fresh job id (``work(index, attempt)``): in the full run of
    2026-11-29, two jobs retried under their own ids hit it again on both retries.
    """
    for attempt in range(1, PEER_RETRIES + 1):
        if error is None or server != "pulsar" or "(return code 126)" not in str(error):
            return error
        failures.retried.append(
            {"server": server, "what": f"{what} {index}", "error": str(error)[:300]}
        )
        try:
            work(index, attempt)
        except Exception as again:
            error = again
        else:
            error = None
    return error


def run_parallel(
    work: Work,
    items: Iterable[int],
    threads: int,
    failures: Failures,
    server: str,
    what: str,
) -> int:
    """Run ``work`` over ``items`` on ``threads`` threads; return how many succeeded."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench") as pool:
        futures = {index: pool.submit(work, index) for index in items}
    done = 0
    for index, future in futures.items():
        error = _retried(work, index, future.exception(), failures, server, what)
        if error is None:
            done += 1
        else:
            failures.add(server, f"{what} {index}", error)
    return done
