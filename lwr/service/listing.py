"""Job listings: the caller's jobs, newest first, filtered by state, a page at a time.

Everything shown comes from the job store (:meth:`~lwr.persistence.store.JobStore.page` and the
files table), never from the job directories, so a page costs two indexed queries whatever the
number of jobs. Paging is by keyset, an opaque ``page_token`` holding the last job's sequence
number, rather than ``offset``: page 2,000 of 100,000 jobs is as cheap as page 1, and a job
set up while a client pages does not shift the pages after it. ``archived`` and ``restoring``
come from the retention rows of the page's jobs (one more indexed query).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone
from typing import Any

from lwr.errors import InvalidRequestError
from lwr.managers.base import JobState
from lwr.persistence.store import FileEntry, JobRecord, JobStore, PageQuery
from lwr.service.retention.table import Kept, RetentionTable
from lwr.service.users import Caller

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_STATES = {state.value for state in JobState}


def query_for(
    caller: Caller,
    manager: str | None,
    states: str | None = None,
    limit: str | None = None,
    page_token: str | None = None,
    owner: str | None = None,
) -> PageQuery:
    """The store query for a listing request's parameters (all strings, as they arrive).

    A user always gets their own jobs; the admin token gets everyone's, or one ``owner``'s
    (``owner=-`` for the admin token's own jobs).
    """
    if owner is not None and not caller.is_admin:
        raise InvalidRequestError("the owner filter is for the admin token only")
    if caller.is_admin:
        scope = None if owner is None else "" if owner == "-" else owner
    else:
        scope = caller.owner
    wanted = tuple(sorted({s.strip() for s in (states or "").split(",") if s.strip()}))
    unknown = [s for s in wanted if s not in _STATES]
    if unknown:
        raise InvalidRequestError(
            f"unknown state(s) {', '.join(unknown)} (states: {', '.join(sorted(_STATES))})"
        )
    return PageQuery(scope, manager, wanted, _decode(page_token), _limit(limit))


def list_jobs(
    store: JobStore, query: PageQuery, show_owner: bool, retention: RetentionTable | None = None
) -> dict[str, Any]:
    """One page as JSON-able data, with the token of the next page (None on the last)."""
    records = store.page(PageQuery(**{**query.__dict__, "limit": query.limit + 1}))
    more = len(records) > query.limit
    records = records[: query.limit]
    files = store.files_of(records)
    kept = retention.of_jobs([(r.manager, r.job_id) for r in records]) if retention else {}
    jobs = [
        describe(r, files[(r.manager, r.job_id)], show_owner, kept.get((r.manager, r.job_id)))
        for r in records
    ]
    return {"jobs": jobs, "next_page_token": _encode(records[-1].seq) if more else None}


def describe(
    record: JobRecord, files: list[FileEntry], show_owner: bool, kept: Kept | None = None
) -> dict[str, Any]:
    """One job of a listing; ``kept`` is its retention row (lwr.service.retention), if any."""
    archived = kept is not None and kept.seq == record.seq and kept.archived
    setup = (record.launch or {}).get("setup") or {}
    item: dict[str, Any] = {
        "id": record.client_job_id,
        "manager": record.manager,
        "kind": kind_of(record),
        "state": record.state.value,
        "submitted": _iso(record.created),
        "finished": _iso(record.finished) if record.finished is not None else None,
        "tool_id": setup.get("tool_id"),
        "inputs": [{"name": f.name, "type": f.type, "size": f.size} for f in files],
        "results_available": record.state is JobState.COMPLETE and not archived,
        "archived": archived,
        "restoring": archived and kept is not None and kept.restoring,
    }
    if show_owner:
        item["owner"] = record.owner
    return item


#: the launch key of a job created through the GA4GH TES face (lwr.tes.staging.LAUNCH_KEY)
_TES_KEY = "tes"


def kind_of(record: JobRecord) -> str:
    """How the job came in: ``tes`` (a GA4GH TES task) or ``pulsar`` (Galaxy's protocol: Galaxy,
    ``lwr submit``, the dashboard); a TES task's ``id`` is its TES task id."""
    return "tes" if isinstance((record.launch or {}).get(_TES_KEY), dict) else "pulsar"


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _limit(value: str | None) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise InvalidRequestError(f"limit must be an integer, not {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return limit


def _encode(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _decode(token: str | None) -> int | None:
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, number = text.partition(":")
        # ASCII digits that fit the databases' 64-bit integer (a bigger one overflowed: a 500)
        if kind == "seq" and number.isascii() and number.isdigit() and len(number) <= 18:
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidRequestError("page_token is not one this server gave")
