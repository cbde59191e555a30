"""Prometheus metrics (placeholder until the collectors land; see docs/metrics.md)."""

from __future__ import annotations

from typing import Any


def start_metrics_server(app: Any) -> Any:
    """Serve /metrics on ``metrics_port`` for a server without HTTP; None when not configured."""
    return None
