"""Reading a helper's JSON request and re-running the helper in the DRMAA environment it names.

``sudo`` resets the environment (and glibc drops ``GLIBC_TUNABLES`` for set-uid programs), so
the variables the DRMAA library needs arrive inside the request. Python must already have them
when it starts (libdrmaa's static TLS is reserved at start-up), hence a second interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from lwr.managers.drmaa_session import drmaa_environment

#: a helper waits at most this long for its second interpreter
CHILD_TIMEOUT = 110.0


def read_request(raw: str) -> dict[str, Any]:
    """Parse the JSON object on stdin, refusing anything else."""
    request = json.loads(raw)
    if not isinstance(request, dict):
        raise ValueError("the request must be a JSON object")
    return request


def requested_environment(request: Mapping[str, Any]) -> dict[str, str]:
    """The DRMAA variables of the request, filtered again: the caller is not trusted with more."""
    env = request.get("environment") or {}
    if not isinstance(env, dict):
        raise ValueError("'environment' must be a JSON object")
    return drmaa_environment({str(k): str(v) for k, v in env.items()})


def rerun_if_needed(module: str, raw: str, request: Mapping[str, Any]) -> int | None:
    """Run ``module`` again with the requested environment unless this process already has it.

    Returns the second interpreter's exit code, or None when this process should do the work.
    """
    wanted = requested_environment(request)
    if all(os.environ.get(key) == value for key, value in wanted.items()):
        return None
    env = {**os.environ, **wanted}
    result = subprocess.run(
        [sys.executable, "-I", "-m", module],
        input=raw,
        text=True,
        env=env,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    return result.returncode
