"""Running a scheduler's or helper's command, with its complaint kept in a SubmitError."""

from __future__ import annotations

import subprocess

from lwr.errors import SubmitError


def run_checked(
    argv: list[str],
    what: str,
    timeout: float,
    *,
    stdin: str | None = None,
    cwd: str | None = None,
) -> str:
    """Run ``argv``; return its stdout, or raise SubmitError with argv, code and streams.

    A time-out and a command that cannot be started are SubmitErrors too, so callers handle one
    error type whatever went wrong.
    """
    try:
        result = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SubmitError(f"{what} timed out after {timeout}s", argv=argv) from exc
    except OSError as exc:
        raise SubmitError(f"{what} could not be started: {exc}", argv=argv) from exc
    if result.returncode != 0:
        raise SubmitError(
            f"{what} failed",
            argv=argv,
            returncode=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    return result.stdout
