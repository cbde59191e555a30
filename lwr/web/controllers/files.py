"""File routes: upload into a job, ask where a file lives, download an output.

Bodies stream in and out in large chunks and never sit whole in memory; an upload lands in a
temporary file beside its target and is renamed into place only when complete, so a broken
connection never leaves a half-written input behind.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from webob import Response

from lwr.errors import (
    AuthorizationError,
    InvalidJobStateError,
    InvalidRequestError,
    LwrError,
    MalformedBodyError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
)
from lwr.managers import safe_path
from lwr.managers.directory import OUTPUT_TYPES
from lwr.service.plans import UploadBudget
from lwr.service.quotas import serialised, upload_budget
from lwr.service.retention.access import check_download
from lwr.staging import digest, splice
from lwr.web.request import Context

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024


def upload(ctx: Context) -> dict[str, Any]:
    manager = ctx.manager
    record = manager.record(ctx.job_id)
    if record.state.is_final:
        raise InvalidJobStateError(
            f"job {ctx.job_id!r} has finished ({record.state.value}); "
            "set it up again before uploading"
        )
    file_type, name = ctx.required("type"), ctx.required("name")
    directory = manager.directory(ctx.job_id)
    target = directory.resolve(file_type, name)
    token = ctx.param("cache_token")
    cache = ctx.app.file_cache if token else None
    if token and not ctx.caller.is_admin:
        raise AuthorizationError("the file cache is for the admin token (private_token)")
    if token and cache is None:
        raise NotFoundError("this server has no file cache (file_cache_dir is not set)")
    where = (manager.name, ctx.job_id)
    with serialised(ctx.caller, where):
        # the plan's limits, before anything of the upload is stored (a known size is refused)
        budget = upload_budget(
            ctx.app.users, ctx.app.store, ctx.caller, where, (file_type, name), _content_length(ctx)
        )
        with directory.locate(file_type, name, create=True) as found:
            if cache is not None and token:  # in the file cache: a private copy, no body
                cached = token
                written = _write_into(found, lambda fd: cache.fill(cached, fd))
            else:
                written = _write_into(found, lambda fd: receive(ctx, fd, budget))
            _still_in_place(directory, file_type, name, found)
            answer = _answer(ctx, found, target, written)
        manager.check_upload(ctx.job_id, file_type, name, target)
        ctx.app.store.record_file(*where, file_type, name, written)
    log.info(
        "job %s/%s: staged %s %s (%d bytes)", manager.name, ctx.job_id, file_type, name, written
    )
    return answer


def _answer(ctx: Context, found: safe_path.Located, target: Path, written: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"path": str(target), "size": written}
    if digest.wants_sha256(ctx.request.headers.get("Want-Repr-Digest")):
        # asked for: the client compares it with its own (lwr.staging.digest)
        with os.fdopen(safe_path.open_regular(found), "rb") as handle:
            answer["sha256"] = digest.sha256_handle(handle).hex()
    return answer


def _write_into(found: safe_path.Located, fill: Callable[[int], int]) -> int:
    """Write a temporary file in the target's directory with ``fill``, then rename it into place.

    Both the temporary file and the rename are relative to the directory's descriptor, so a
    directory swapped for a link meanwhile cannot move the write out of the job.
    """
    if _is_directory(found):
        raise InvalidRequestError(f"{found.name!r} names a directory")
    fd, tmp_name = safe_path.open_temporary(found.dir_fd, ".upload-")
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            written = fill(out.fileno())
        safe_path.put_in_place(found, tmp_name)
    except BaseException:
        safe_path.discard(found, tmp_name)
        raise
    return written


def _is_directory(found: safe_path.Located) -> bool:
    return safe_path.is_directory(found)


def _still_in_place(directory: Any, file_type: str, name: str, found: safe_path.Located) -> None:
    """Refuse an upload whose directory the job moved while it was written (nothing escaped).

    The bytes landed in the directory that was opened, wherever the job moved it to; the client
    would look for them under the name it sent, so it is told, and the file is taken back.
    """
    try:
        with directory.locate(file_type, name) as again:
            if safe_path.same_directory(again.dir_fd, found.dir_fd):
                return
    except LwrError:
        pass
    safe_path.discard(found, found.name)
    raise AuthorizationError(f"{name!r}: its directory was moved or replaced during the upload")


def _content_length(ctx: Context) -> int | None:
    """The body's declared size; None for a chunked one."""
    length_header = ctx.request.environ.get("CONTENT_LENGTH")
    try:
        length = int(length_header) if length_header not in (None, "") else None
    except ValueError:
        raise InvalidRequestError(f"invalid Content-Length {length_header!r}") from None
    if length is not None and length < 0:
        raise InvalidRequestError(f"invalid Content-Length {length_header!r}")
    return length


def receive(ctx: Context, fd: int, budget: UploadBudget | None = None) -> int:
    """Stream the request body into the open file ``fd``; return the number of bytes.

    ``budget`` is the caller's plan's (lwr.service.quotas): a chunk that would pass it is not
    written, and the upload is refused (the caller discards the partial file).
    """
    environ = ctx.request.environ
    limit = ctx.app.config.max_upload_size
    remaining = _content_length(ctx)  # over the budget: refused before this, by upload()
    if remaining is not None and limit is not None and remaining > limit:
        raise PayloadTooLargeError(f"upload of {remaining} bytes exceeds max_upload_size {limit}")
    stream = environ["wsgi.input"]
    written = 0
    try:
        if remaining and splice.available() and hasattr(stream, "splice_into"):
            moved = stream.splice_into(fd)
            written += moved
            remaining -= moved
        for chunk in _chunks(stream, remaining):
            if budget is not None and written + len(chunk) > budget.allowed:
                raise budget.refuse(ctx.app.users.plans, written + len(chunk))
            _write_all(fd, chunk)
            written += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)
            if limit is not None and written > limit:
                raise PayloadTooLargeError(f"upload exceeds max_upload_size {limit}")
    except TimeoutError:  # the server's socket timeout: the partial file is discarded by caller
        raise RequestTimeoutError("the request body stopped arriving") from None
    except ValueError as exc:  # cheroot's chunked reader: a chunk size that is not hex, no CRLF
        raise MalformedBodyError(f"malformed request body: {exc}") from None
    if remaining:
        raise InvalidRequestError(f"upload ended {remaining} bytes short of its Content-Length")
    return written


def _write_all(fd: int, data: memoryview | bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _chunks(stream: Any, remaining: int | None) -> Iterator[memoryview | bytes]:
    """The body in chunks: one reused buffer when the server's input offers ``readinto``."""
    if remaining is not None and hasattr(stream, "readinto"):
        # sized to the body: a 4 MiB buffer per small upload would stay resident in malloc arenas
        buffer = memoryview(bytearray(min(CHUNK, max(remaining, 1))))
        while remaining > 0:
            got = stream.readinto(buffer[: min(len(buffer), remaining)])
            if not got:
                return
            remaining -= got
            yield buffer[:got]
        return
    while remaining is None or remaining > 0:
        chunk = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def path(ctx: Context) -> dict[str, Any]:
    manager = ctx.manager
    manager.record(ctx.job_id)
    file_type = ctx.required("type")
    directory = manager.directory(ctx.job_id)
    for_output = file_type in OUTPUT_TYPES
    name = ctx.required("name")
    target = directory.resolve(file_type, name, for_output=for_output)
    try:  # what exists of the name must not pass through a link out of the job
        with directory.locate(file_type, name, for_output=for_output):
            pass
    except NotFoundError:
        pass  # a directory on the way is missing: nothing there can be a link
    return {"path": str(target)}


def download(ctx: Context) -> Response:
    manager = ctx.manager
    record = manager.record(ctx.job_id)
    name, file_type = ctx.required("name"), ctx.required("type")
    # archived results answer 409 saying so (and how to get them back), not 404
    check_download(ctx.app.retention.table, ctx.app.users, record, file_type, name)
    directory = manager.directory(ctx.job_id)
    directory.resolve(file_type, name, for_output=True)
    try:
        with directory.locate(file_type, name, for_output=True) as found:
            is_directory = _is_directory(found)
            if not is_directory:
                handle = os.fdopen(safe_path.open_regular(found), "rb")
    except NotFoundError:
        raise NotFoundError(f"output {name!r} does not exist (or is not a regular file)") from None
    except safe_path.NamesADirectoryError:  # the name ends in a directory (e.g. a link to one)
        is_directory = True
    if is_directory:
        raise NotFoundError(f"output {name!r} is a directory, not a file")
    size = os.fstat(handle.fileno()).st_size
    response = Response(content_type="application/octet-stream")
    wrapper = ctx.request.environ.get("wsgi.file_wrapper")
    if digest.wants_sha256(ctx.request.headers.get("Want-Repr-Digest")):
        response.headers["Repr-Digest"] = digest.repr_digest(digest.sha256_handle(handle))
        handle.seek(0)
    response.app_iter = wrapper(handle, CHUNK) if wrapper else _iterate(handle)
    response.content_length = size
    return response


def _iterate(handle: Any) -> Any:
    with handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                return
            yield chunk
