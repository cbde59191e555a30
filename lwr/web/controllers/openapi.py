"""``GET /openapi.json``: the OpenAPI 3.1 description of the protocol, served from the package.

The description is written once, as ``lwr/web/openapi.yaml`` inside the package (so an installed,
non-editable LWR serves it too; ``docs/openapi.yaml`` links to it), parsed on the first request
and kept: it cannot change while the server runs. It is public, like ``/healthz``: it says nothing
the published documentation does not, and API tools need it before anyone hands them a token.
"""

from __future__ import annotations

import functools
from importlib import resources

import yaml

from lwr.web.request import Context

RESOURCE = "openapi.yaml"


@functools.cache
def description() -> dict[str, object]:
    """The parsed description (YAML merges and aliases expanded into plain JSON values)."""
    text = resources.files("lwr.web").joinpath(RESOURCE).read_text(encoding="utf-8")
    loaded: dict[str, object] = yaml.safe_load(text)
    return loaded


def document(ctx: Context) -> dict[str, object]:
    """The description; the dispatcher answers it as JSON."""
    return description()
