"""schemathesis against a running server, driven by the server's own ``/openapi.json``.

One LWR server (started as a user starts it, ``paster serve``) with a private token, a file cache,
an upload limit and two managers. schemathesis (its command line, as CI would run it by hand)
reads the description from the server and runs every phase — examples, coverage (boundary and
invalid values), fuzzing, and stateful sequences that follow the description's links (setup →
upload → submit → status → download → clean) — with every check: no 5xx, only documented status
codes and content types, bodies that match their schemas, invalid input refused, documented
methods only (405 with ``Allow`` otherwise), and the token enforced.

Runs: with the token (as Galaxy sends it, ``private_token`` in the query, and in an
``Authorization`` header), and without one, where every protected operation must refuse and the
public ones still answer. Each run is bounded by ``--max-examples`` and ``--max-time``, and the
stateful phase has a run of its own (see :func:`fuzz`); the seed is fixed (``LWR_FUZZ_SEED``
picks another) so a failure in CI reproduces. Command lines the fuzzer submits are made harmless
by ``openapi_fuzz_hooks`` (they run on this machine).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lwr.web.controllers import openapi
from lwr.web.routes import ROUTES
from tests.integration.dashboard import DashboardClient
from tests.integration.server import BIN, REPO, LwrServer, free_port, write_server_ini

pytestmark = pytest.mark.integration

TOKEN = "fuzz-token-13"
SEED = os.environ.get("LWR_FUZZ_SEED", "13")
MANAGERS_INI = """
[manager:_default_]
type = queued_python
max_concurrent_jobs = 2
min_polling_interval = 0.1

[manager:other]
type = unqueued
min_polling_interval = 0.1
"""
CSRF_ONLY_FORMS = ("POST /ui/sign-in", "POST /ui/sign-out")
PHASES = ("examples", "coverage", "fuzzing", "stateful")
LIFE_CYCLE = (
    "POST /jobs",
    "POST /jobs/{job_id}/files",
    "POST /jobs/{job_id}/submit",
    "GET /jobs/{job_id}/status",
    "DELETE /jobs/{job_id}",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LwrServer]:
    directory = tmp_path_factory.mktemp("openapi-fuzz")
    port = free_port()
    options = {
        "private_token": TOKEN,
        "file_cache_dir": str(directory / "cache"),
        "max_upload_size": str(1024 * 1024),
        "ui_tools": "\n    show = cat $input",
    }
    write_server_ini(directory, port, options)
    (directory / "job_managers.ini").write_text(MANAGERS_INI)
    lwr = LwrServer(directory, port).start()
    yield lwr
    lwr.stop()


def config_file(directory: Path, query_token: str | None) -> Path:
    """The shared configuration, plus the token for the ``private_token`` scheme if given."""
    text = (REPO / "tests" / "integration" / "openapi_fuzz.toml").read_text()
    if query_token is not None:
        text += f'\n[auth.openapi.privateToken]\napi_key = "{query_token}"\n'
    path = directory / "schemathesis.toml"
    path.write_text(text)
    return path


def schemathesis(
    server: LwrServer,
    report: Path,
    *args: str,
    query_token: str | None = None,
    header_token: bool = False,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``schemathesis run`` on the server's description; its JSON report, checked to exist.

    Every check is on by default; naming them with ``--checks`` would also override the
    per-operation settings of ``openapi_fuzz.toml``.
    """
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config_file(report.parent, query_token)),
        "run",
        server.url + "openapi.json",
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *args,
    ]
    env = {
        **os.environ,
        **(env or {}),
        "SCHEMATHESIS_HOOKS": "tests.integration.openapi_fuzz_hooks",
    }
    env["LWR_FUZZ_TOKEN_IN"] = "header" if header_token else ""  # see openapi_fuzz_hooks
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # run where its crash cache (.schemathesis/) is thrown away: the seed is what reproduces
    done = subprocess.run(
        command,
        cwd=report.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report.with_suffix(".txt").write_text(done.stdout + done.stderr)
    failures = done.stdout.find("= FAILURES =")
    output = done.stdout[max(failures, 0) :][:20000] + done.stderr[-5000:]
    assert report.exists(), f"schemathesis wrote no report (exit {done.returncode}):\n{output}"
    result: dict[str, Any] = json.loads(report.read_text())
    assert done.returncode == 0 and result["exit_code"] == 0, (
        f"schemathesis found problems (seed {SEED}):\n{output}"
    )
    assert not result["failures"] and not result["errors"], output
    return result


def fuzz(
    server: LwrServer,
    report: Path,
    *args: str,
    phases: tuple[str, ...],
    examples: int,
    budget: int,
    alone: int,
    **options: Any,
) -> dict[str, Any]:
    """``phases`` in one run of ``budget`` seconds, but none skipped for want of time.

    ``--max-time`` bounds a whole run and its phases take the budget in turn: on a loaded
    machine the first phases spend it and schemathesis then *skips* the later ones (``status:
    skip``, no reason given) — the stateful sequences (setup → upload → submit → status →
    clean), or fuzzing, would go untested exactly when CI is busy. So the stateful phase always
    has a run of its own (``alone`` seconds), and a phase the shared run did not reach gets one
    too: a phase that starts a run always runs, load only makes it try fewer cases. The answer
    is one report: each phase's status, the test cases added up, every warning, the operations
    of the run that reached the most.
    """
    shared = [phase for phase in phases if phase != "stateful"]
    result = schemathesis(
        server, report, *args, "--phases", ",".join(shared), "--max-examples", str(examples),
        "--max-time", str(budget), **options,
    )  # fmt: skip
    starved = [
        phase
        for phase in shared
        if result["phases"][phase] == {"status": "skip", "skip_reason": None}
    ]
    for phase in [*starved, *(["stateful"] if "stateful" in phases else [])]:
        name = report.with_name(f"{report.stem}-{phase}.json")
        one = schemathesis(
            server, name, *args, "--phases", phase, "--max-examples", str(examples),
            "--max-time", str(alone), **options,
        )  # fmt: skip
        result["phases"][phase] = one["phases"][phase]
        result["test_cases"]["generated"] += one["test_cases"]["generated"]
        if one["operations"]["tested"] > result["operations"]["tested"]:
            result["operations"] = one["operations"]  # the shared run ended before reaching all
        warned = result["warnings"]["missing_auth"]
        warned.extend(w for w in one["warnings"]["missing_auth"] if w not in warned)
    return result


def assert_every_phase_ran(result: dict[str, Any], phases: tuple[str, ...] = PHASES) -> None:
    operations = result["operations"]
    # every route in both variants (the unit test holds the description to the same list), less
    # GET /openapi.json, which schemathesis leaves out since it is the description it reads
    described = sum(2 if route.per_manager else 1 for route in ROUTES) - 1
    assert operations["tested"] == operations["total"] == described, operations
    ran = {name: phase["status"] for name, phase in result["phases"].items() if name in phases}
    assert ran == dict.fromkeys(phases, "success"), result["phases"]
    assert result["test_cases"]["generated"] >= 2 * described, result["test_cases"]


def protected_operations() -> list[str]:
    spec = openapi.description()
    return sorted(
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()  # type: ignore[attr-defined]
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete")
        and operation.get("security") != []
        and {} not in operation.get("security", [])  # optional (GET /metrics): public here
    )


@pytest.mark.parametrize(
    ("where", "budget", "phases"),
    [
        ("query", 40, PHASES),  # as Galaxy sends it: the full run, stateful sequences included
        ("header", 20, ("coverage", "fuzzing")),  # the other way to send the token
    ],
)
def test_with_the_token_every_answer_is_as_described(
    server: LwrServer, tmp_path: Path, where: str, budget: int, phases: tuple[str, ...]
) -> None:
    token = ["--header", f"Authorization: Bearer {TOKEN}"] if where == "header" else []
    result = fuzz(
        server,
        tmp_path / "with-token.json",
        *token,
        phases=phases,
        examples=25,
        budget=budget,
        alone=12,
        query_token=TOKEN if where == "query" else None,
        header_token=where == "header",
    )
    assert_every_phase_ran(result, phases)
    # the life-cycle operations answered something else than 401/403 with the token (a download
    # of a generated name may well see only 403s: names that lead out of the job)
    refused = set(result["warnings"]["missing_auth"])
    assert not refused & set(LIFE_CYCLE), f"only refusals from {sorted(refused)}"
    assert "Traceback" not in server.log(), server.log()[-5000:]


def test_without_a_token_every_protected_route_refuses(server: LwrServer, tmp_path: Path) -> None:
    answers = tmp_path / "answers.txt"
    result = fuzz(
        server,
        tmp_path / "no-token.json",
        phases=PHASES,
        examples=5,
        budget=20,
        alone=6,
        env={"LWR_FUZZ_RESPONSES": str(answers)},
    )
    assert_every_phase_ran(result)
    # every answer the fuzzer got, recorded by openapi_fuzz_hooks.after_call. Each protected
    # operation, and each of the dashboard's forms that need no sign-in (public, but the fuzzer
    # has no session, so their CSRF check refuses every post; the other /ui/ posts redirect to
    # sign-in first), was refused with 401/403 and never answered anything but a client error
    # (a 404 for a path no route takes, a 400 for a body that is no form); and no operation
    # described as public only ever refused. schemathesis' own missing-auth warning says much
    # the same once it has seen enough cases, which a loaded machine does not always give it.
    statuses: dict[str, set[int]] = {}
    for line in answers.read_text().splitlines():
        method, path, status = line.split(" ")
        statuses.setdefault(f"{method} {path}", set()).add(int(status))
    refused = sorted([*protected_operations(), *CSRF_ONLY_FORMS])
    never = [op for op in refused if not statuses.get(op, set()) & {401, 403}]
    assert not never, f"never refused for want of a token: {never}"
    let_through = {op: codes for op in refused if (codes := {c for c in statuses[op] if c < 400})}
    assert not let_through, f"answered without a token: {let_through}"
    only_refusing = sorted(op for op, codes in statuses.items() if codes <= {401, 403})
    assert set(only_refusing) <= set(refused), "refusing, yet not described as protected"
    assert "Traceback" not in server.log(), server.log()[-5000:]


def test_signed_in_pages_never_fail(server: LwrServer, tmp_path: Path) -> None:
    """The dashboard fuzzed signed in as a user: the session cookie on every request, the
    session's CSRF token in every form (openapi_fuzz_hooks), so each page reads and acts on
    what the fuzzer sends (a tool run on a generated file, a plan, notification channels):
    answers are pages with their 4xx, never a 5xx."""
    status, answer = server.request("POST", "users", {"name": "fuzzer", "private_token": TOKEN})
    assert status == 200, answer
    token = answer["token"]
    status, _ = server.request("POST", "jobs", {"job_id": "fuzzjob", "private_token": token})
    assert status == 200
    browser = DashboardClient(server.url)
    browser.sign_in(token)
    csrf = browser.csrf("/ui/profile")
    result = schemathesis(
        server,
        tmp_path / "signed-in.json",
        "--include-path-regex",
        "^/ui",
        "--header",
        f"Cookie: lwr_session={browser.cookie}",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "25",
        "--max-time",
        "40",
        env={"LWR_FUZZ_CSRF": csrf, "LWR_FUZZ_JOB": "fuzzjob"},
    )
    ui_routes = sum(1 for route in ROUTES if route.pattern.startswith("/ui"))
    assert result["operations"]["tested"] == ui_routes, result["operations"]
    assert browser.signed_in()  # the whole run was signed in
    assert "Traceback" not in server.log(), server.log()[-5000:]
