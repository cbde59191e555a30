"""A TES 1.1 task document, checked and turned into frozen values.

Checking happens once, when the task is created: every field a client may send is type-checked
here and anything malformed is a 400 naming the field, so the staging and command code downstream
only ever see well-formed values. The task as the client sent it is kept too (it is what ``GET``
answers), minus the fields the server owns (``id``, ``state``, ``logs``, ``creation_time``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lwr.errors import InvalidRequestError

#: fields of tesTask the server fills in; a client's values for them are dropped
SERVER_FIELDS = ("id", "state", "logs", "creation_time")
#: POSIX glob characters (IEEE Std 1003.1-2017, 2.13) that make an output path a pattern
_GLOB = re.compile(r"[*?\[]")
#: a TES ``content`` literal is at least 128 KiB by the spec; we take up to this much
MAX_CONTENT = 1024 * 1024
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FILE, DIRECTORY = "FILE", "DIRECTORY"


@dataclass(frozen=True)
class Executor:
    image: str
    command: tuple[str, ...]
    workdir: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ignore_error: bool = False


@dataclass(frozen=True)
class Input:
    path: str
    url: str | None = None
    content: str | None = None
    type: str = FILE
    name: str | None = None
    streamable: bool = False


@dataclass(frozen=True)
class Output:
    path: str
    url: str
    type: str = FILE
    path_prefix: str | None = None
    name: str | None = None

    @property
    def is_glob(self) -> bool:
        return bool(_GLOB.search(self.path))


@dataclass(frozen=True)
class Resources:
    cpu_cores: int | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None
    preemptible: bool | None = None
    zones: tuple[str, ...] = ()
    backend_parameters: Mapping[str, str] = field(default_factory=dict)
    backend_parameters_strict: bool = False


@dataclass(frozen=True)
class Task:
    """A checked task: the parts the server acts on, and the document as the client sent it."""

    executors: tuple[Executor, ...]
    inputs: tuple[Input, ...] = ()
    outputs: tuple[Output, ...] = ()
    volumes: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict)


def parse_task(body: Any) -> Task:
    """The checked task of a ``POST /tasks`` body, or InvalidRequestError naming the field."""
    doc = _mapping(body, "the task")
    executors = _list(doc, "executors", "task")
    if not executors:
        raise InvalidRequestError("task.executors: at least one executor is required")
    task = Task(
        executors=tuple(_executor(e, f"executors[{i}]") for i, e in enumerate(executors)),
        inputs=tuple(_input(e, f"inputs[{i}]") for i, e in enumerate(_list(doc, "inputs", "task"))),
        outputs=tuple(
            _output(e, f"outputs[{i}]") for i, e in enumerate(_list(doc, "outputs", "task"))
        ),
        volumes=tuple(
            _abs_path(v, f"volumes[{i}]") for i, v in enumerate(_list(doc, "volumes", "task"))
        ),
        resources=_resources(doc.get("resources")),
        name=_str(doc, "name", "task"),
        tags=_str_map(doc.get("tags"), "task.tags"),
        document={k: v for k, v in doc.items() if k not in SERVER_FIELDS},
    )
    _str(doc, "description", "task")
    return task


def task_from_document(doc: Mapping[str, Any]) -> Task:
    """A stored task document read back (it was checked when created)."""
    return parse_task(dict(doc))


def _executor(value: Any, where: str) -> Executor:
    doc = _mapping(value, where)
    image = _str(doc, "image", where)
    if not image:
        raise InvalidRequestError(f"{where}.image is required")
    command = _list(doc, "command", where)
    if not command or not all(isinstance(arg, str) for arg in command):
        raise InvalidRequestError(f"{where}.command must be a non-empty list of strings")
    env = _str_map(doc.get("env"), f"{where}.env")
    for name in env:
        if not _ENV_NAME.match(name):
            raise InvalidRequestError(f"{where}.env: invalid variable name {name!r}")
    return Executor(
        image=image,
        command=tuple(command),
        workdir=_opt_abs(doc, "workdir", where),
        stdin=_opt_abs(doc, "stdin", where),
        stdout=_opt_abs(doc, "stdout", where),
        stderr=_opt_abs(doc, "stderr", where),
        env=env,
        ignore_error=_bool(doc, "ignore_error", where),
    )


def _input(value: Any, where: str) -> Input:
    doc = _mapping(value, where)
    path = _abs_path(doc.get("path"), f"{where}.path")
    kind = _file_type(doc, where)
    content = _str(doc, "content", where)
    url = _str(doc, "url", where)
    if content:
        if kind == DIRECTORY:
            raise InvalidRequestError(f"{where}: a DIRECTORY input cannot have content")
        if len(content.encode("utf-8", errors="replace")) > MAX_CONTENT:
            raise InvalidRequestError(f"{where}.content is larger than {MAX_CONTENT} bytes")
        url = None  # the spec: with content, url is ignored
    elif not url:
        raise InvalidRequestError(f"{where} needs a url or a content")
    return Input(
        path=path,
        url=url,
        content=content or None,
        type=kind,
        name=_str(doc, "name", where),
        streamable=_bool(doc, "streamable", where),
    )


def _output(value: Any, where: str) -> Output:
    doc = _mapping(value, where)
    url = _str(doc, "url", where)
    if not url:
        raise InvalidRequestError(f"{where}.url is required")
    output = Output(
        path=_abs_path(doc.get("path"), f"{where}.path"),
        url=url,
        type=_file_type(doc, where),
        path_prefix=_opt_abs(doc, "path_prefix", where),
        name=_str(doc, "name", where),
    )
    if output.is_glob:
        if output.path_prefix is None:
            raise InvalidRequestError(f"{where}.path_prefix is required when the path is a glob")
        if not output.path.startswith(output.path_prefix):
            raise InvalidRequestError(f"{where}.path does not start with its path_prefix")
    return output


def _resources(value: Any) -> Resources:
    if value is None:
        return Resources()
    doc = _mapping(value, "task.resources")
    where = "task.resources"
    cores = doc.get("cpu_cores")
    if cores is not None and (not isinstance(cores, int) or isinstance(cores, bool) or cores < 1):
        raise InvalidRequestError(f"{where}.cpu_cores must be a positive integer")
    return Resources(
        cpu_cores=cores,
        ram_gb=_positive(doc, "ram_gb", where),
        disk_gb=_positive(doc, "disk_gb", where),
        preemptible=_bool(doc, "preemptible", where) if "preemptible" in doc else None,
        zones=tuple(_strings(doc, "zones", where)),
        backend_parameters=_str_map(doc.get("backend_parameters"), f"{where}.backend_parameters"),
        backend_parameters_strict=_bool(doc, "backend_parameters_strict", where),
    )


# -- small typed getters ------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{where} must be a JSON object")
    return value


def _list(doc: Mapping[str, Any], key: str, where: str) -> list[Any]:
    return _typed(doc, key, where, list, "a list") or []


def _typed(doc: Mapping[str, Any], key: str, where: str, kind: type, what: str) -> Any:
    """``doc[key]`` if absent (None) or of ``kind``, else a 400 saying it must be ``what``."""
    value = doc.get(key)
    if value is not None and not isinstance(value, kind):
        raise InvalidRequestError(f"{where}.{key} must be {what}")
    return value


def _str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value: str | None = _typed(doc, key, where, str, "a string")
    if value is not None and "\x00" in value:
        raise InvalidRequestError(f"{where}.{key} must not contain NUL bytes")
    return value


def _strings(doc: Mapping[str, Any], key: str, where: str) -> list[str]:
    values = _list(doc, key, where)
    if not all(isinstance(v, str) for v in values):
        raise InvalidRequestError(f"{where}.{key} must be a list of strings")
    return values


def _bool(doc: Mapping[str, Any], key: str, where: str) -> bool:
    return bool(_typed(doc, key, where, bool, "true or false"))


def _positive(doc: Mapping[str, Any], key: str, where: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidRequestError(f"{where}.{key} must be a positive number")
    return float(value)


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    doc = _mapping(value, where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        raise InvalidRequestError(f"{where} must map strings to strings")
    return dict(doc)


def _file_type(doc: Mapping[str, Any], where: str) -> str:
    kind = doc.get("type") or FILE
    if kind not in (FILE, DIRECTORY):
        raise InvalidRequestError(f"{where}.type must be FILE or DIRECTORY")
    return str(kind)


def _abs_path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidRequestError(f"{where} must be an absolute path")
    if "\x00" in value:
        raise InvalidRequestError(f"{where} must not contain NUL bytes")
    return value


def _opt_abs(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    return None if value is None else _abs_path(value, f"{where}.{key}")
