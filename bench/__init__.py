"""LWR's benchmark suite: LWR and Pulsar 0.16 side by side, driven by Galaxy's own client.

Run ``python -m bench`` (full) or ``python -m bench --quick`` (the CI smoke test) from the
repository root with LWR's virtualenv; see docs/benchmarks.md.
"""

#: the workloads of a run, in order (``python -m bench --only NAME`` picks some)
WORKLOADS = ("latency", "throughput", "staging", "scale", "mq")
