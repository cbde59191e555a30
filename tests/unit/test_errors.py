"""The error hierarchy: HTTP statuses, JSON bodies, and what SubmitError keeps for the operator."""

from __future__ import annotations

import ast
import inspect

import pytest

from lwr import errors
from lwr.errors import (
    AuthorizationError,
    ConfigurationError,
    InvalidJobStateError,
    InvalidRequestError,
    LwrError,
    MessagingError,
    NotFoundError,
    PayloadTooLargeError,
    StagingError,
    SubmitError,
    UnknownJobError,
)


@pytest.mark.parametrize(
    ("error_class", "status"),
    [
        (LwrError, 500),
        (ConfigurationError, 500),
        (AuthorizationError, 403),
        (InvalidRequestError, 400),
        (UnknownJobError, 404),
        (NotFoundError, 404),
        (InvalidJobStateError, 409),
        (StagingError, 500),
        (SubmitError, 500),
        (MessagingError, 500),
        (PayloadTooLargeError, 413),
    ],
)
def test_each_error_carries_its_http_status(error_class: type[LwrError], status: int) -> None:
    assert error_class.status == status
    assert issubclass(error_class, LwrError)


def test_every_error_class_in_the_module_is_an_lwr_error() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if obj.__module__ == errors.__name__
    ]
    assert len(classes) >= 11
    assert all(issubclass(cls, LwrError) for cls in classes)


def test_to_dict_is_the_json_error_body() -> None:
    assert InvalidRequestError("missing 'name'").to_dict() == {"error": "missing 'name'"}
    assert str(InvalidRequestError("missing 'name'")) == "missing 'name'"


def test_unknown_job_names_job_and_manager() -> None:
    exc = UnknownJobError("42", "slurm")
    assert exc.job_id == "42"
    assert exc.manager == "slurm"
    assert "'42'" in exc.message and "'slurm'" in exc.message
    assert "'_default_'" in UnknownJobError("7").message


def test_submit_error_keeps_what_the_scheduler_said() -> None:
    exc = SubmitError(
        "sbatch refused the job",
        argv=["sbatch", "--parsable", "job.sh"],
        returncode=1,
        stdout="",
        stderr="sbatch: error: invalid partition specified: nope\n",
    )
    assert exc.argv == ["sbatch", "--parsable", "job.sh"]
    assert exc.returncode == 1
    assert exc.stderr.startswith("sbatch: error")
    assert "sbatch --parsable job.sh" in exc.message
    assert "exited 1" in exc.message
    assert "invalid partition specified: nope" in exc.message
    assert not exc.message.endswith("\n)")


def test_submit_error_falls_back_to_stdout_when_stderr_is_empty() -> None:
    exc = SubmitError("qsub failed", argv=["qsub"], returncode=2, stdout="no queue\n", stderr="  ")
    assert "no queue" in exc.message


def test_submit_error_without_argv_is_just_the_message() -> None:
    exc = SubmitError("could not start bash")
    assert exc.message == "could not start bash"
    assert exc.argv == [] and exc.returncode is None


def test_errors_module_imports_nothing_else_from_lwr() -> None:
    tree = ast.parse(inspect.getsource(errors))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not any(name == "lwr" or name.startswith("lwr.") for name in imported), imported
