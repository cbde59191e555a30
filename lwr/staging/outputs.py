"""Which files of a finished job go back to the client, and where each one belongs.

Galaxy's client decides this from what it expected (``ClientOutputs.to_dict()``, sent with the job
as ``remote_staging["client_outputs"]``) and what the server reports it produced (the listings in
the completion dictionary). When the server stages outputs itself it must pick exactly the same
files, or Galaxy would miss some (or be sent files it never asked for), so this module follows the
client's own collection rules, in its order:

1. ``work_dir_outputs``: (file in the working directory, client destination) pairs; a directory
   source sends every file below it, a name not found may be a glob;
2. ``output_files`` found in ``outputs/``, plus their ``<name>_files/`` extra-files directories;
3. the tool version file (``COMMAND_VERSION``);
4. working, metadata and job directory files matching the dynamic-output patterns, the
   dataset collectors, or the ``filename``/``extra_files`` references of ``galaxy.json``.

Pure: listings and dictionaries in, a plan out.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lwr import jsondepth
from lwr.errors import InvalidRequestError

log = logging.getLogger(__name__)

COMMAND_VERSION_FILENAME = "COMMAND_VERSION"


@dataclass(frozen=True)
class Output:
    """One file to send: its type, its name in the job directory, and the client's path for it."""

    output_type: str
    name: str
    path: str


@dataclass
class OutputPlan:
    """The files to send, and the expected outputs the job did not produce."""

    outputs: list[Output] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, output: Output) -> None:
        if output not in self.outputs:
            self.outputs.append(output)


def plan_outputs(client_outputs: Mapping[str, Any], status: Mapping[str, Any]) -> OutputPlan:
    """Every output the client would collect from this finished job, in the client's order."""
    plan = OutputPlan()
    working_contents = list(status.get("working_directory_contents") or [])
    outputs_contents = list(status.get("outputs_directory_contents") or [])
    working_directory = client_outputs.get("working_directory")
    output_files = [str(p) for p in client_outputs.get("output_files") or []]

    for pair in client_outputs.get("work_dir_outputs") or []:
        source, destination = str(pair[0]), str(pair[1])
        if working_directory is None:
            continue
        _work_dir_output(plan, working_directory, working_contents, source, destination)
        if destination in output_files:
            output_files.remove(destination)

    for output_file in output_files:
        base = os.path.basename(output_file)
        if base in outputs_contents:
            plan.add(Output("output", base, output_file))
        else:
            plan.missing.append(output_file)
        extras = base[: -len(".dat")] + "_files" + os.sep if base.endswith(".dat") else None
        for name in outputs_contents:
            if extras and name.startswith(extras):
                plan.add(Output("output", name, os.path.join(os.path.dirname(output_file), name)))

    version_file = client_outputs.get("version_file")
    if version_file and COMMAND_VERSION_FILENAME in outputs_contents:
        plan.add(Output("output", COMMAND_VERSION_FILENAME, str(version_file)))

    matcher = _DynamicMatcher(client_outputs, status)
    for directory_key, contents_key, output_type in (
        ("working_directory", "working_directory_contents", "output_workdir"),
        ("metadata_directory", "metadata_directory_contents", "output_metadata"),
        ("job_directory", "job_directory_contents", "output_jobdir"),
    ):
        directory = client_outputs.get(directory_key)
        if directory is None:
            continue
        for name in status.get(contents_key) or []:
            if matcher.matches(name):
                plan.add(Output(output_type, name, os.path.join(str(directory), name)))
    return plan


def _work_dir_output(
    plan: OutputPlan, working_directory: str, contents: list[str], source: str, destination: str
) -> None:
    name = os.path.relpath(source, working_directory)
    below = [f for f in contents if f.startswith(name + os.sep)]
    if below:
        for remote in below:
            plan.add(
                Output(
                    "output_workdir",
                    remote,
                    os.path.join(destination, os.path.relpath(remote, name)),
                )
            )
        return
    if name not in contents:
        matching = fnmatch.filter(contents, name)
        if not matching:
            # the client tolerates an absent from_work_dir output (Galaxy makes it empty)
            log.info("working-directory output %s was not produced", name)
            return
        name = matching[0]
    plan.add(Output("output_workdir", name, destination))


class _DynamicMatcher:
    """Decides whether a produced file is a dynamic output the client would collect."""

    def __init__(self, client_outputs: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        patterns = client_outputs.get("dynamic_outputs") or []
        self.patterns = [re.compile(p) for p in patterns if isinstance(p, str)]
        self.collectors = [
            d for d in client_outputs.get("dataset_collector_descriptions") or [] if _usable(d)
        ]
        self.filenames, self.extra_files = _galaxy_json_references(
            status.get("realized_dynamic_file_sources") or []
        )

    def matches(self, name: str) -> bool:
        if name in self.filenames or any(name.startswith(r) for r in self.extra_files):
            return True
        if any(self._collector_matches(d, name) for d in self.collectors):
            return True
        return any(p.match(name) for p in self.patterns)

    @staticmethod
    def _collector_matches(description: Mapping[str, Any], name: str) -> bool:
        directory = description.get("directory")
        subject = name
        if directory:
            relative = os.path.relpath(os.path.normpath(name), os.path.normpath(str(directory)))
            if relative == os.curdir or relative.startswith(os.pardir):
                return False
            subject = relative
        return re.match(str(description["pattern"]), subject) is not None


def _usable(description: Any) -> bool:
    """A collector with a regular-expression pattern (named ones arrive already expanded)."""
    if not isinstance(description, Mapping) or not isinstance(description.get("pattern"), str):
        return False
    try:
        re.compile(description["pattern"])
    except re.error:
        log.warning("ignoring dataset collector with invalid pattern %r", description["pattern"])
        return False
    return True


def _galaxy_json_references(sources: Iterable[Any]) -> tuple[set[str], list[str]]:
    """The ``filename`` and ``extra_files`` values anywhere in the realized ``galaxy.json``."""
    filenames: set[str] = set()
    extra_files: list[str] = []

    def record(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                record(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key == "filename" and isinstance(item, str):
                    filenames.add(item)
                elif key == "extra_files" and isinstance(item, str):
                    extra_files.append(item)
                if isinstance(item, (list, dict)):
                    record(item)

    for source in sources:
        if not isinstance(source, Mapping):
            continue
        contents = str(source.get("contents") or "")
        documents = contents.splitlines() if source.get("type") == "legacy_galaxy" else [contents]
        for document in documents:
            try:  # the job wrote it: malformed, or nested deep enough to break record(), is ignored
                record(jsondepth.loads(document, "galaxy.json"))
            except InvalidRequestError as exc:
                log.warning("ignoring galaxy.json %s: %s", source.get("path"), exc.message)
    return filenames, extra_files
