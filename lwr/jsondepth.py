"""One bound on how deeply untrusted JSON may nest, for HTTP parameters and AMQP messages alike.

Galaxy's client sends JSON a few levels deep. JSON nested thousands of levels deep is an attack:
parsing it exhausts Python's recursion limit (``RecursionError``), and JSON just under that limit
parses but breaks later — storing the job (JSON again), walking it, logging it — far from the
request, as a 500 or a dead consumer thread. Every entrance (``lwr.web.request`` for query
parameters, ``lwr.tes.routes`` for TES task documents, ``lwr.messaging.messages`` for message
bodies) checks with the functions here, so the limit and its message are the same everywhere;
so does JSON a job writes and the server reads (``galaxy.json``, TES's stage-out record).
"""

from __future__ import annotations

import json
from typing import Any

from lwr.errors import InvalidRequestError

#: far beyond anything Galaxy sends (a few levels), far below Python's recursion limit
MAX_JSON_DEPTH = 64


def depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether lists/objects in ``value`` nest deeper than ``limit`` (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children and depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def too_deep(what: str) -> InvalidRequestError:
    """The one refusal of JSON nested too deep; ``what`` names where it came from."""
    return InvalidRequestError(f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels")


def check_depth(value: Any, what: str) -> Any:
    """``value`` itself, or InvalidRequestError when it nests deeper than :data:`MAX_JSON_DEPTH`."""
    if depth_exceeds(value):
        raise too_deep(what)
    return value


def loads(raw: str | bytes, what: str) -> Any:
    """Parse untrusted JSON: InvalidRequestError (naming ``what``) when malformed or too deep."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise too_deep(what) from None
    except ValueError as exc:
        raise InvalidRequestError(f"{what} is not valid JSON: {exc}") from None
    return check_depth(value, what)
