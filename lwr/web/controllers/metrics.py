"""``GET /metrics``: the Prometheus text format of :mod:`lwr.metrics`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webob import Response

from lwr.errors import NotFoundError
from lwr.metrics import INSTALL_HINT

if TYPE_CHECKING:
    from lwr.config import AppConfig
    from lwr.web.request import Context


def is_public(config: AppConfig) -> bool:
    """Public unless ``metrics_require_token``: counts and timings only, no job ids or paths."""
    return not config.metrics.require_token


def export(ctx: Context) -> Response:
    metrics = ctx.app.metrics
    if metrics is None:
        raise NotFoundError(f"/metrics needs prometheus-client: {INSTALL_HINT}")
    body, content_type = metrics.exposition()
    response = Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
