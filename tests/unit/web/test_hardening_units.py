"""Unit checks of the web-layer guards (the integration proofs are in test_web_hardening)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lwr.errors import InvalidRequestError
from lwr.jsondepth import MAX_JSON_DEPTH
from lwr.jsondepth import depth_exceeds as _depth_exceeds
from lwr.managers.script import env_raw, environment_lines
from lwr.web.framing import framing_problem


@pytest.mark.parametrize("raw", ["false", "true", "", 0, 1, [], {}])
def test_env_raw_refuses_anything_but_a_boolean(raw: Any) -> None:
    with pytest.raises(InvalidRequestError, match="'VAR'"):
        environment_lines([{"name": "VAR", "value": "$HOME", "raw": raw}])


def test_env_raw_booleans_and_absence() -> None:
    assert env_raw({"name": "A", "raw": True}) is True
    assert env_raw({"name": "A", "raw": False}) is False
    assert env_raw({"name": "A", "raw": None}) is False
    assert env_raw({"name": "A"}) is False
    assert environment_lines([{"name": "A", "value": "$X y", "raw": False}]) == [
        "A='$X y'; export A"
    ]


def test_json_depth_limit() -> None:
    assert not _depth_exceeds(
        json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH), MAX_JSON_DEPTH
    )
    deeper = MAX_JSON_DEPTH + 2
    assert _depth_exceeds(json.loads('{"a":' * deeper + "1" + "}" * deeper), MAX_JSON_DEPTH)
    assert not _depth_exceeds({"a": [1, {"b": "c"}]}, MAX_JSON_DEPTH)


def test_framing_problems() -> None:
    length, encoding = b"Content-Length", b"Transfer-Encoding"
    assert framing_problem({length: b"5"}, [b"5", b"6"]) == "conflicting Content-Length headers"
    assert framing_problem({length: b"5"}, [b"5", b"5"]) is None
    assert framing_problem({length: b"5", encoding: b"chunked"}, [b"5"]) is not None
    assert framing_problem({encoding: b"chunked"}, []) is None


def test_a_trailing_newline_does_not_pass_a_name_check() -> None:
    """Found by fuzzing: ``$`` also matches before a final newline, so ``re.match(r"^...$")``
    let ``"id\\n"`` through. As an env name that wrote ``id`` on a line of its own into the job
    script (a command the tool whitelist never saw); as a job id, a directory named with a
    newline. Every check now anchors with ``\\Z``."""
    from lwr.managers.dependencies import resolve
    from lwr.managers.directory import check_job_id

    with pytest.raises(InvalidRequestError, match="environment variable"):
        environment_lines([{"name": "id\n", "value": "x"}])
    with pytest.raises(InvalidRequestError, match="invalid job id"):
        check_job_id("job-1\n")
    with pytest.raises(InvalidRequestError, match="name or version"):
        resolve(None, {"requirements": [{"name": "samtools\n"}]})
    assert environment_lines([{"name": "ID", "value": "x"}]) == ["ID=x; export ID"]
    assert check_job_id("job-1") == "job-1"
