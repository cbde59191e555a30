"""File-cache routes (``/cache``): answered only when ``file_cache_dir`` is configured.

The client is identified by its address, as Galaxy's caching client expects (two Galaxy servers
caching the same path get separate entries). ``PUT /cache`` answers a bare JSON boolean, because
the client tests the decoded answer's truth.
"""

from __future__ import annotations

from typing import Any

from lwr.cache import FileCache
from lwr.errors import NotFoundError
from lwr.web.controllers.files import receive
from lwr.web.request import Context


def _cache(ctx: Context) -> FileCache:
    cache: FileCache | None = getattr(ctx.app, "file_cache", None)
    if cache is None:
        raise NotFoundError("this server has no file cache (file_cache_dir is not set)")
    return cache


def _client(ctx: Context) -> str:
    return str(ctx.request.client_addr or "unknown")


def status(ctx: Context) -> dict[str, Any]:
    return _cache(ctx).available(_client(ctx), ctx.required("path"))


def required(ctx: Context) -> bool:
    return _cache(ctx).required(_client(ctx), ctx.required("path"))


def insert(ctx: Context) -> dict[str, Any]:
    cache = _cache(ctx)
    client, path = _client(ctx), ctx.required("path")
    uploaded = cache.incoming_path()
    try:
        with open(uploaded, "wb", buffering=0) as out:  # the cache's own directory
            size = receive(ctx, out.fileno())
    except BaseException:
        cache.abandon(client, path, uploaded)
        raise
    token = cache.commit(client, path, uploaded)
    return {"token": token, "size": size}
