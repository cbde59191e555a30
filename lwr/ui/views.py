"""Presentation helpers: listing items made readable (times, sizes, links) for the templates."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from lwr.service.plans import Plan


def human_time(iso: str | None, now: float | None = None) -> str:
    """``2026-11-29 02:07 UTC (3 minutes ago)`` from the listing's ISO time; "—" for None."""
    if not iso:
        return "—"
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    ago = (now if now is not None else time.time()) - moment.timestamp()
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC ({_ago(ago)})"


def _ago(seconds: float) -> str:
    if seconds < 0:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "1 second ago" if int(seconds) == 1 else f"{int(seconds)} seconds ago"


def human_size(size: int | None) -> str:
    """Bytes in the units the plans use (powers of 1000); "unlimited" for None."""
    if size is None:
        return "unlimited"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # unreachable: the loop returns at GB


def job_item(job: dict[str, Any]) -> dict[str, Any]:
    """A listing item with what the pages show besides: readable times, sizes, its link."""
    item = dict(job)
    item["submitted_human"] = human_time(job["submitted"])
    item["finished_human"] = human_time(job["finished"])
    item["inputs"] = [{**f, "size_human": human_size(f["size"])} for f in job["inputs"]]
    item["query"] = job_query(job)
    item["href"] = f"/ui/jobs/{quote(job['id'], safe='')}?{item['query']}"
    return item


def job_query(job: dict[str, Any]) -> str:
    """The query naming a job's manager (and owner, for the admin's view of others' jobs)."""
    query = {"manager": job["manager"]}
    if job.get("owner"):
        query["owner"] = job["owner"]
    return urlencode(query)


def plan_row(plan: Plan) -> dict[str, Any]:
    minutes = plan.retention_minutes
    return {
        "name": plan.name,
        "max_input_size": human_size(plan.max_input_size),
        "max_total_input": human_size(plan.max_total_input),
        "max_running_jobs": "unlimited" if plan.max_running_jobs is None else plan.max_running_jobs,
        "retention": "forever" if minutes is None else f"{minutes:g} minutes",
    }


def attachment(name: str) -> str:
    """A Content-Disposition naming the file (RFC 6266/5987: any name, safely quoted)."""
    base = name.rsplit("/", 1)[-1]
    ascii_name = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in base
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(base, safe='')}"
