"""File-cache routes (``/cache``): answered only when ``file_cache_dir`` is configured."""

from __future__ import annotations

from typing import Any

from lwr.errors import NotFoundError
from lwr.web.request import Context


def _unavailable(ctx: Context) -> NotFoundError:
    return NotFoundError("this server has no file cache (file_cache_dir is not set)")


def status(ctx: Context) -> dict[str, Any]:
    raise _unavailable(ctx)


def required(ctx: Context) -> dict[str, Any]:
    raise _unavailable(ctx)


def insert(ctx: Context) -> dict[str, Any]:
    raise _unavailable(ctx)
