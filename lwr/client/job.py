"""What a client knows about a job before it runs: the description :func:`run_job` stages.

Plain dataclasses, no behaviour beyond the wire form of the expected outputs: Galaxy's client
sends that form (``client_outputs``) with every job so a server that stages outputs itself picks
exactly the files the client would, and :func:`lwr.staging.outputs.plan_outputs` reads it on both
sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: the files of the working, metadata and job directories collected after a run unless told
#: otherwise (the same default as Galaxy's client)
DEFAULT_DYNAMIC_OUTPUTS = (
    r"primary_.*|galaxy.json|metadata_.*|dataset_\d+\.dat|__instrument_.*|dataset_\d+_files.+"
    r"|outputs_populated/.*|tool_stdout|tool_stderr",
)

#: kinds of declared input
INPUT_KINDS = ("input", "extra_files", "metadata")


@dataclass(frozen=True)
class InputFile:
    """A declared input: a dataset, its extra-files directory, or its metadata file.

    A metadata file is stored as ``metadata_<basename>`` so it cannot collide with the dataset
    of the same name; an extra-files directory keeps its own name and its tree.
    """

    path: str
    kind: str = "input"

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"input kind must be one of {', '.join(INPUT_KINDS)}: {self.kind!r}")


@dataclass
class ExpectedOutputs:
    """The outputs the client will collect once the job has run.

    ``work_dir_outputs`` pairs a file (or directory, or glob) in the local working directory with
    the place the client wants it (Galaxy's ``from_work_dir``). ``dynamic_outputs`` are regular
    expressions matched against the names listed in the working, metadata and job directories;
    ``dynamic_file_sources`` name the ``galaxy.json`` files (``{"type": "galaxy" |
    "legacy_galaxy", "path": ...}``) whose ``filename``/``extra_files`` entries are outputs too.
    """

    output_files: list[str] = field(default_factory=list)
    work_dir_outputs: list[tuple[str, str]] = field(default_factory=list)
    version_file: str | None = None
    dynamic_outputs: list[str] = field(default_factory=lambda: list(DEFAULT_DYNAMIC_OUTPUTS))
    dynamic_file_sources: list[dict[str, str]] | None = None
    dataset_collector_descriptions: list[dict[str, Any]] = field(default_factory=list)

    def to_wire(
        self,
        working_directory: str | None,
        metadata_directory: str | None,
        job_directory: str | None = None,
    ) -> dict[str, Any]:
        """The ``client_outputs`` dictionary servers (and our own collector) understand."""
        return {
            "working_directory": working_directory,
            "metadata_directory": metadata_directory,
            "job_directory": job_directory,
            "work_dir_outputs": [list(pair) for pair in self.work_dir_outputs],
            "output_files": list(self.output_files),
            "version_file": self.version_file,
            "dynamic_outputs": list(self.dynamic_outputs),
            "dynamic_file_sources": self.dynamic_file_sources,
            "dataset_collector_descriptions": list(self.dataset_collector_descriptions),
        }


@dataclass
class JobDescription:
    """Everything needed to run one job remotely, in the client's own paths.

    ``command_line`` and the ``config_files`` are rewritten to the server's paths before they are
    sent; files under ``tool_dir`` referenced by either (plus any named in ``tool_files``,
    relative to ``tool_dir``; a directory is sent whole) are staged as tool files. Files already in
    ``working_directory`` and ``metadata_directory`` are staged into the job's own directories.
    ``env`` is a list of ``{"name": ..., "value": ...}``; ``dependencies_description`` is
    ``{"requirements": [{"name", "version", "type"}], "installed_tool_dependencies": []}``.
    """

    command_line: str
    job_id: str
    inputs: list[InputFile] = field(default_factory=list)
    config_files: list[str] = field(default_factory=list)
    tool_id: str | None = None
    tool_version: str | None = None
    tool_dir: str | None = None
    tool_files: list[str] = field(default_factory=list)
    working_directory: str | None = None
    metadata_directory: str | None = None
    job_directory_files: list[str] = field(default_factory=list)
    outputs: ExpectedOutputs = field(default_factory=ExpectedOutputs)
    env: list[dict[str, str]] = field(default_factory=list)
    dependencies_description: Mapping[str, Any] | None = None
    submit_params: dict[str, Any] = field(default_factory=dict)
    rewrite_paths: bool = True
