"""The one JSON depth bound: refused alike whether parsing recurses too deep or the value is."""

from __future__ import annotations

import json

import pytest

from lwr import jsondepth
from lwr.errors import InvalidRequestError
from lwr.jsondepth import MAX_JSON_DEPTH


def nested(levels: int) -> str:
    return '{"a":' * (levels - 1) + "[1]" + "}" * (levels - 1)


def test_the_limit_itself_is_accepted_one_more_is_refused() -> None:
    assert jsondepth.loads(nested(MAX_JSON_DEPTH), "p") is not None
    with pytest.raises(InvalidRequestError, match=f"p nests JSON deeper than {MAX_JSON_DEPTH}"):
        jsondepth.loads(nested(MAX_JSON_DEPTH + 1), "p")


def test_json_deep_enough_to_exhaust_the_parser_is_refused_the_same_way() -> None:
    with pytest.raises(InvalidRequestError, match="'env' nests JSON deeper"):
        jsondepth.loads("[" * 200_000 + "]" * 200_000, "'env'")


def test_malformed_json_names_where_it_came_from() -> None:
    with pytest.raises(InvalidRequestError, match="parameter 'x' is not valid JSON"):
        jsondepth.loads("{", "parameter 'x'")


def test_check_depth_walks_without_recursion() -> None:
    deep: list[object] = []
    for _ in range(100_000):  # deeper than any recursive walk could go
        deep = [deep]
    assert jsondepth.depth_exceeds(deep)
    with pytest.raises(InvalidRequestError, match="message body"):
        jsondepth.check_depth({"job_id": "1", "env": deep}, "message body")
    shallow = json.loads('{"a": [1, {"b": "c"}]}')
    assert jsondepth.check_depth(shallow, "x") is shallow
