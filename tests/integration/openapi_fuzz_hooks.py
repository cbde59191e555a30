"""schemathesis hooks for tests/integration/test_openapi_fuzz.py (loaded via SCHEMATHESIS_HOOKS).

A submit runs its ``command_line`` as a shell command on the test machine. The fuzzer may send any
text there, so every non-empty command line is made harmless just before it is sent: it becomes
``echo <the generated text, shell-quoted> > fuzz.out`` (a file in the job's working directory,
which the description's links then download). The server still sees every generated character (its
checks — NUL bytes, the retired jobs-directory token, length — apply as they would), and the job
still runs, finishes and is downloaded and cleaned like any other; only what the shell does is
pinned. Empty values stay empty, so a refusal the fuzzer expects still happens. A TES task's
executors likewise get ``echo`` in front of their command.

In the run that sends the token in the ``Authorization`` header (``LWR_FUZZ_TOKEN_IN=header``),
schemathesis still fills the other scheme, ``private_token`` in the query, with a generated value;
the server takes the query's token first and refuses it, so most requests never got past the
token. That generated query token is dropped, so the run tests the header as its name says (a
request without any token is still refused: the header is the only one).

In the signed-in run (``LWR_FUZZ_CSRF`` set) the dashboard's forms get the session's CSRF token.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

import schemathesis


def _harmless(value: Any) -> Any:
    if isinstance(value, str) and value:
        return f"echo {shlex.quote(value)} > fuzz.out"
    if isinstance(value, list):
        return [_harmless(item) for item in value]
    return value


def _harmless_executors(task: Any) -> None:
    """A TES task's executors run their ``command`` argv on the host: make each an ``echo``."""
    executors = task.get("executors") if isinstance(task, dict) else None
    for executor in executors if isinstance(executors, list) else ():
        command = executor.get("command") if isinstance(executor, dict) else None
        if isinstance(command, list) and command and command[0] != "echo":  # once per case
            executor["command"] = ["echo", *(str(word) for word in command)]


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: Any) -> None:
    """Wrap the command line of a submit (root or per manager) in a quoted ``echo``, and put
    ``echo`` in front of every TES executor's command."""
    query = case.query
    if os.environ.get("LWR_FUZZ_TOKEN_IN") == "header" and isinstance(query, dict):
        query.pop("private_token", None)
    if case.path.endswith("/submit") and isinstance(query, dict) and "command_line" in query:
        query["command_line"] = _harmless(query["command_line"])
    if case.path.endswith("/ga4gh/tes/v1/tasks") and case.method.upper() == "POST":
        _harmless_executors(case.body)
    csrf = os.environ.get("LWR_FUZZ_CSRF")
    if csrf and case.path.startswith("/ui"):
        _signed_in(case, csrf, os.environ.get("LWR_FUZZ_JOB", ""))


def _signed_in(case: schemathesis.Case, csrf: str, job_id: str) -> None:
    """The signed-in run (``LWR_FUZZ_CSRF``: the session's CSRF token; the session cookie is a
    header of every request): every form carries the token, so the pages act on what the
    fuzzer sends, except sign-out, sent without it (403) so the session outlives the run; half
    the job pages name the user's real job (``LWR_FUZZ_JOB``) and half the forms the server's
    tool or plan, the rest generated values."""
    if case.method.upper() == "POST" and isinstance(case.body, dict):
        if case.path == "/ui/sign-out":
            case.body.pop("csrf_token", None)
        else:
            case.body["csrf_token"] = csrf
        # half the forms name the server's own tool or plan, so they get past that check
        for field, real in (("tool", "show"), ("plan", "premium")):
            if isinstance(case.body.get(field), str) and len(case.body[field]) % 2 == 0:
                case.body[field] = real
    params = case.path_parameters
    if job_id and isinstance(params, dict) and isinstance(params.get("job_id"), str):
        if len(params["job_id"]) % 2 == 0:
            params["job_id"] = job_id


@schemathesis.hook
def after_call(context: schemathesis.HookContext, case: schemathesis.Case, response: Any) -> None:
    """With ``LWR_FUZZ_RESPONSES`` set, append ``METHOD path-template status`` for every answer:
    the no-token test judges every answer itself rather than trusting schemathesis' missing-auth
    warning, a heuristic that needs enough cases of an operation to fire (fewer under load)."""
    record = os.environ.get("LWR_FUZZ_RESPONSES")
    if record:
        with open(record, "a", encoding="utf-8") as out:
            out.write(f"{case.method.upper()} {case.operation.path} {response.status_code}\n")
