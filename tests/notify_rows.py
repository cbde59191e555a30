"""Outbox rows written straight into the ``notifications`` table, for pruning tests.

Thousands of rows with chosen end times would take thousands of job transitions (and waiting
for days to pass); these are the rows those transitions leave, in the store's own columns.
"""

from __future__ import annotations

import uuid

from lwr.service.notify.outbox import NotifyStore


def add_rows(notify: NotifyStore, count: int, status: str, done: float | None) -> None:
    """``count`` rows of alice's in ``status``, ended at ``done`` (None: not ended)."""
    rows = [
        (
            uuid.uuid4().hex,
            f"_default_/alice~{uuid.uuid4().hex}/1/0.0",
            "webhook",
            "alice",
            "https://hook.example/in",
            "k",
            '{"id": "1"}',
            status,
            1,
            0.0,
            0.0,
            done,
            None if status != "failed" else "HTTP 500",
        )
        for _ in range(count)
    ]
    with notify.db.transaction() as tx:
        tx.executemany(
            "INSERT INTO notifications (id, job_key, channel, owner, target, secret, body, "
            "status, attempts, next_try, created, done, last_error) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
