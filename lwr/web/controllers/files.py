"""File routes: upload into a job, ask where a file lives, download an output.

Bodies stream in and out in large chunks and never sit whole in memory; an upload lands in a
temporary file beside its target and is renamed into place only when complete, so a broken
connection never leaves a half-written input behind.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from webob import Response

from lwr.errors import (
    InvalidJobStateError,
    InvalidRequestError,
    MalformedBodyError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
)
from lwr.managers.directory import INPUT_TYPES, OUTPUT_TYPES
from lwr.staging import bodies, digest, splice
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
    target = manager.directory(ctx.job_id).resolve(ctx.required("type"), ctx.required("name"))
    if target.is_dir():
        raise InvalidRequestError(f"{ctx.param('name')!r} names a directory")
    token = ctx.param("cache_token")
    if token:  # the file is in the file cache: link or copy it, there is no body
        cache = ctx.app.file_cache
        if cache is None:
            raise NotFoundError("this server has no file cache (file_cache_dir is not set)")
        written = cache.place(token, target)
    else:
        written = receive(ctx, target)
    manager.check_upload(ctx.job_id, ctx.required("type"), ctx.required("name"), target)
    log.info(
        "job %s/%s: staged %s %s (%d bytes)",
        manager.name,
        ctx.job_id,
        ctx.param("type"),
        ctx.param("name"),
        written,
    )
    answer: dict[str, Any] = {"path": str(target), "size": written}
    if digest.wants_sha256(ctx.request.headers.get("Want-Repr-Digest")):
        # asked for: the client compares it with its own (lwr.staging.digest)
        answer["sha256"] = digest.sha256_file(target).hex()
    return answer


def receive(ctx: Context, target: Path) -> int:
    """Stream the request body into ``target`` atomically; return the number of bytes."""
    environ = ctx.request.environ
    limit = ctx.app.config.max_upload_size
    length_header = environ.get("CONTENT_LENGTH")
    try:
        remaining = int(length_header) if length_header not in (None, "") else None
    except ValueError:
        raise InvalidRequestError(f"invalid Content-Length {length_header!r}") from None
    if remaining is not None and limit is not None and remaining > limit:
        raise PayloadTooLargeError(f"upload of {remaining} bytes exceeds max_upload_size {limit}")
    stream = environ["wsgi.input"]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
    written = 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            if remaining and splice.available() and hasattr(stream, "splice_into"):
                moved = stream.splice_into(out.fileno())
                written += moved
                remaining -= moved
            for chunk in _chunks(stream, remaining):
                out.write(chunk)
                written += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
                if limit is not None and written > limit:
                    raise PayloadTooLargeError(f"upload exceeds max_upload_size {limit}")
        if remaining:
            raise InvalidRequestError(f"upload ended {remaining} bytes short of its Content-Length")
        os.replace(tmp_name, target)
    except TimeoutError:
        bodies.discard(tmp_name)
        raise RequestTimeoutError("the request body stopped arriving") from None
    except ValueError as exc:  # cheroot's chunked reader: a chunk size that is not hex, no CRLF
        bodies.discard(tmp_name)
        raise MalformedBodyError(f"malformed request body: {exc}") from None
    except BaseException:
        bodies.discard(tmp_name)
        raise
    return written


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
    target = directory.resolve(
        file_type, ctx.required("name"), for_output=file_type in OUTPUT_TYPES
    )
    if file_type not in INPUT_TYPES and file_type not in OUTPUT_TYPES:
        raise InvalidRequestError(f"unknown file type {file_type!r}")
    return {"path": str(target)}


def download(ctx: Context) -> Response:
    manager = ctx.manager
    manager.record(ctx.job_id)
    name = ctx.required("name")
    target = manager.directory(ctx.job_id).resolve(ctx.required("type"), name, for_output=True)
    try:
        handle = open(target, "rb")
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"output {name!r} does not exist") from None
    except IsADirectoryError:
        handle = None
    if handle is None:
        raise NotFoundError(f"output {name!r} is a directory, not a file")
    size = os.fstat(handle.fileno()).st_size
    response = Response(content_type="application/octet-stream")
    wrapper = ctx.request.environ.get("wsgi.file_wrapper")
    if digest.wants_sha256(ctx.request.headers.get("Want-Repr-Digest")):
        response.headers["Repr-Digest"] = digest.repr_digest(digest.sha256_file(target))
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
