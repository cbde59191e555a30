"""A sanity job that exercises every staging path, and the checks that judge it.

Used by ``run_client_tests.py`` and the integration tests: one small Python tool reads every kind
of staged file (an input with extra files and metadata, a config file naming the input, a helper
tool file, a working- and a metadata-directory file, an index found on the command line with its
sibling files, a path to rewrite and one to leave alone) and writes every kind of output (datasets,
extra files, the version file, a ``from_work_dir`` file, a metadata file, ``galaxy.json`` in both
forms and the files it names). Its findings come back in ``sanity_report.json``; the client side
checks what arrived. Each check is one :class:`Check`, so a report says exactly what broke.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwr.client.actions import ClientActions
from lwr.client.api import JobClient
from lwr.client.job import ExpectedOutputs, InputFile, JobDescription
from lwr.client.runner import JobResult, run_job
from lwr.errors import LwrError

_TOOL = Path(__file__).with_name("sanity_tool.py")
EXIT_CODE = 3


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class Scenario:
    """The sanity job's files under ``root``; :meth:`prepare` writes them, :meth:`run` runs it."""

    root: Path
    job_id: str = field(default_factory=lambda: "lwr-sanity-" + uuid.uuid4().hex[:8])

    def p(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def prepare(self) -> None:
        files = {
            ("t", "sanity_tool.py"): _TOOL.read_text(encoding="utf-8"),
            ("t", "subdir", "helper.txt"): "helper tool file",
            ("data", "dataset_0.dat"): "Hello world input!!@!",
            ("data", "dataset_0_files", "sub", "extra"): "INPUT_EXTRA_CONTENTS",
            ("data", "metadata", "meta_0.dat"): "INPUT METADATA CONTENTS",
            ("w", "config.txt"): f"input={self.p('data', 'dataset_0.dat')}\n",
            ("m", "metadata_in"): "meta input",
            ("idx", "bwa", "human.fa"): "AGTC",
            ("idx", "bwa", "human.fa.fai"): "AGTC index",
            ("idx", "seq", "all.fa"): "AGTC all",
            ("fixed", "none.txt"): "left alone",
        }
        for parts, text in files.items():
            path = self.root.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        self.root.joinpath("out").mkdir(exist_ok=True)

    def rules(self, default_action: str) -> list[dict[str, Any]]:
        """The scenario's own rules: an index with depth, a rewrite, and a path left alone."""
        return [
            {
                "path": self.p("idx"),
                "path_types": "unstructured",
                "depth": 2,
                "action": default_action,
            },
            {
                "path": self.p("shared"),
                "path_types": "unstructured",
                "action": "rewrite",
                "source_directory": self.p("shared"),
                "destination_directory": self.p("shared2"),
            },
            {"path": self.p("fixed"), "path_types": "unstructured", "action": "none"},
        ]

    def description(self) -> JobDescription:
        args = [
            self.p("t", "sanity_tool.py"),
            self.p("w", "config.txt"),
            self.p("out", "dataset_1.dat"),
            self.p("out", "dataset_2.dat"),
            self.p("data", "dataset_0_files", "sub", "extra"),
            self.p("data", "metadata", "meta_0.dat"),
            self.p("out", "GALAXY_VERSION"),
            self.p("idx", "bwa", "human.fa"),
            self.p("m", "metadata_in"),
            self.p("shared", "ref", "genome.txt"),
            self.p("fixed", "none.txt"),
        ]
        quoted = " ".join(f'"{a}"' for a in args)
        command = f"python3 {quoted} > ../metadata/tool_stdout 2> ../metadata/tool_stderr"
        outputs = ExpectedOutputs(
            output_files=[self.p("out", "dataset_1.dat"), self.p("out", "dataset_2.dat")],
            work_dir_outputs=[
                (self.p("w", "workdir_output"), self.p("out", "dataset_77.dat")),
                (self.p("w", "sanity_report.json"), self.p("out", "sanity_report.json")),
            ],
            version_file=self.p("out", "GALAXY_VERSION"),
            dynamic_file_sources=[
                {"type": "galaxy", "path": "galaxy.json"},
                {"type": "legacy_galaxy", "path": "legacy_galaxy.json"},
            ],
        )
        return JobDescription(
            command_line=command,
            job_id=self.job_id,
            inputs=[
                InputFile(self.p("data", "dataset_0.dat")),
                InputFile(self.p("data", "dataset_0_files"), "extra_files"),
                InputFile(self.p("data", "metadata", "meta_0.dat"), "metadata"),
            ],
            config_files=[self.p("w", "config.txt")],
            tool_id="lwr_sanity",
            tool_version="1.0",
            tool_dir=self.p("t"),
            tool_files=["subdir/helper.txt"],
            working_directory=self.p("w"),
            metadata_directory=self.p("m"),
            outputs=outputs,
            env=[{"name": "LWR_SANITY_ENV", "value": "env value"}],
        )

    def run(
        self,
        client: JobClient,
        default_action: str = "transfer",
        extra_rules: Any = None,
        files_endpoint: str | None = None,
        timeout: float = 120.0,
    ) -> tuple[JobResult | None, list[Check]]:
        """Run the job and judge it; never raises for a failed check, only reports it."""
        rules: list[Any] = self.rules(default_action)
        extra: Any = extra_rules
        if isinstance(extra, (str, os.PathLike)):
            extra = ClientActions.load(config=extra).to_wire()
        if isinstance(extra, Mapping):
            rules += list(extra.get("paths") or [])
        elif isinstance(extra, list):
            rules += extra
        try:
            actions = ClientActions.load(default_action, {"paths": rules}, files_endpoint)
            result = run_job(client, self.description(), actions, timeout=timeout, clean="always")
        except LwrError as exc:
            return None, [Check("run the job", False, exc.message)]
        return result, self.judge(result, default_action)

    def judge(self, result: JobResult, default_action: str) -> list[Check]:
        checks = [
            Check("job completed", result.state == "complete", f"state {result.state}"),
            Check(
                "return code reported",
                result.returncode == EXIT_CODE,
                f"{result.returncode} (expected {EXIT_CODE})",
            ),
            Check(
                "tool stdout reported",
                "sanity stdout" in result.stdout,
                repr(result.stdout[:80]),
            ),
            Check("outputs collected without error", not result.errors, "; ".join(result.errors)),
        ]
        checks += self._in_job_checks(default_action)
        expected = {
            "output dataset": (("out", "dataset_1.dat"), "input="),
            "output dataset (env)": (("out", "dataset_2.dat"), "env value"),
            "output extra files": (("out", "dataset_1_files", "extra"), "EXTRA_OUTPUT"),
            "version file": (("out", "GALAXY_VERSION"), "1.0.1"),
            "from_work_dir output": (("out", "dataset_77.dat"), "WORK DIR OUTPUT"),
            "metadata directory output": (("m", "metadata_output"), "meta output"),
            "galaxy.json output": (("w", "galaxy.json"), None),
            "dynamic output (galaxy.json)": (("w", "gjson_refer"), "gjson_refer_contents"),
            "dynamic output (legacy galaxy.json)": (("w", "legacy_refer"), "legacy_contents"),
        }
        for name, (parts, wanted) in expected.items():
            checks.append(_file_check(name, self.root.joinpath(*parts), wanted))
        checks.append(Check("job cleaned", result.cleaned, ""))
        return checks

    def _in_job_checks(self, default_action: str) -> list[Check]:
        report_path = self.root / "out" / "sanity_report.json"
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [Check("tool staged and ran (sanity_report.json)", False, str(exc))]
        checks = [Check("tool staged and ran (sanity_report.json)", True)]
        for name, (ok, detail) in report.items():
            if name != "arguments seen":
                checks.append(Check(name, bool(ok), str(detail)))
        args = report.get("arguments seen", [False, {}])[1]
        if isinstance(args, dict):
            checks += self._path_checks(args, default_action)
        return checks

    def _path_checks(self, args: Mapping[str, str], default_action: str) -> list[Check]:
        rewritten = self.p("shared2", "ref", "genome.txt")
        fixed = self.p("fixed", "none.txt")
        index = str(args.get("index", ""))
        staged = default_action not in ("none", "rewrite")
        where = "unstructured" if staged else self.p("idx")
        return [
            Check(
                "rewrite action applied", args.get("shared") == rewritten, str(args.get("shared"))
            ),
            Check(
                "path with action none untouched",
                args.get("fixed") == fixed,
                str(args.get("fixed")),
            ),
            Check("index path rewritten to the server", where in index, index),
        ]


def _file_check(name: str, path: Path, wanted: str | None) -> Check:
    try:
        contents = path.read_text(encoding="utf-8")
    except OSError as exc:
        return Check(name, False, f"{path}: {exc.strerror or exc}")
    if wanted is None or wanted in contents:
        return Check(name, True, str(path))
    return Check(name, False, f"{path} holds {contents[:60]!r}, expected {wanted!r}")


def format_report(checks: list[Check], write: Callable[[str], None]) -> bool:
    """Write one line per check and a summary; return whether every check passed."""
    width = max((len(c.name) for c in checks), default=10)
    for check in checks:
        mark = "PASS" if check.ok else "FAIL"
        detail = f"  ({check.detail})" if check.detail and not check.ok else ""
        write(f"{mark}  {check.name:<{width}}{detail}".rstrip())
    failed = sum(1 for c in checks if not c.ok)
    write(f"{len(checks) - failed} passed, {failed} failed")
    return failed == 0
