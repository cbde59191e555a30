"""``python -m bench.claims [--setups N] [--url URL]``: what the pool's resend guard costs a setup.

A pool worker given a setup carrying Galaxy's ``acknowledge_uuid`` appends a claim to the pool's
ledger stream and starts the job only once it has read the claim back (:mod:`lwr.pool.resends`).
This measures that round trip on the real broker with the worker's own code (one
:class:`~lwr.pool.kill_ledger.KillLedger` and its connection, as a worker's session has): the
claims one after the other, as the consumer thread makes them, and the same number at once, as a
prefetch of several setups arriving together makes them; then what the claims add to a new
worker's catch-up (it reads the whole window before taking setups). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

import kombu

from lwr.pool.kill_ledger import KillLedger, ledger_name


def _drain_until(connection: kombu.Connection, done: list[bool], count: int) -> None:
    deadline = time.monotonic() + 60
    while len(done) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("claims not read back within 60 s")
        try:
            connection.drain_events(timeout=1)
        except TimeoutError:
            pass


def measure(url: str, setups: int) -> dict[str, object]:
    prefix = f"pulsar_bench{uuid.uuid4().hex[:8]}_"
    ledger = KillLedger(prefix, "bench", lambda entries: None)
    with kombu.Connection(url) as connection:
        connection.connect()
        try:
            ledger.prepare(connection)
            ledger.catch_up(connection)
            serial: list[float] = []
            for index in range(setups):
                won: list[bool] = []
                started = time.perf_counter()
                ledger.resends.claim(f"job{index}", uuid.uuid4().hex, then=won.append)
                _drain_until(connection, won, 1)
                serial.append((time.perf_counter() - started) * 1000)
                assert won == [True]
            together: list[bool] = []
            started = time.perf_counter()
            for index in range(setups):
                ledger.resends.claim(f"burst{index}", uuid.uuid4().hex, then=together.append)
            _drain_until(connection, together, setups)
            burst_ms = (time.perf_counter() - started) * 1000
            for index in range(setups):  # each job's end, as the worker records it
                ledger.resends.started(f"job{index}", f"u{index}")
                ledger.resends.finished(f"job{index}")
            newcomer = KillLedger(prefix, "newcomer", lambda entries: None)
            with kombu.Connection(url) as other:
                other.connect()
                started = time.perf_counter()
                newcomer.prepare(other)
                newcomer.catch_up(other)
                catch_up_ms = (time.perf_counter() - started) * 1000
        finally:
            connection.channel().queue_delete(ledger_name(prefix))
    cuts = statistics.quantiles(serial, n=20)
    return {
        "setups": setups,
        "one_at_a_time_ms": {
            "median": round(statistics.median(serial), 2),
            "p95": round(cuts[18], 2),
            "max": round(max(serial), 2),
        },
        "all_at_once_ms_per_setup": round(burst_ms / setups, 3),
        "entries_in_stream": 3 * setups,  # the claims of both rounds, a done per serial setup
        "newcomer_catch_up_ms": round(catch_up_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", type=int, default=500)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()
    print(json.dumps(measure(args.url, args.setups), indent=2))


if __name__ == "__main__":
    main()
