"""The whole LWR error hierarchy.

Every error a client can provoke carries the HTTP status it maps to, so the web layer turns any of
them into a JSON answer in one place (``lwr.web.dispatch``) and nothing else needs to know about
HTTP. This module imports nothing from the rest of ``lwr`` so every layer can use it.
"""

from __future__ import annotations

from collections.abc import Sequence


class LwrError(Exception):
    """Base of every error LWR raises on purpose; ``status`` is the HTTP status it maps to."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        """The JSON body the web layer answers with."""
        return {"error": self.message}


class ConfigurationError(LwrError):
    """The server's own configuration is wrong; raised at start-up, before any job is touched."""

    status = 500


class AuthorizationError(LwrError):
    """The request lacks the right private token, or asks for something outside its job."""

    status = 403


class ToolNotAllowedError(AuthorizationError):
    """The tool whitelist (``tool_config_files``) refuses a job; ``rule`` names the check."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"refused by tool whitelist rule {rule!r}: {message}")
        self.rule = rule


class InvalidRequestError(LwrError):
    """A parameter is missing or malformed, or a name or path is not acceptable."""

    status = 400


class UnknownJobError(LwrError):
    """No job with that id exists on this manager (never set up, or already cleaned)."""

    status = 404

    def __init__(self, job_id: str, manager: str = "_default_") -> None:
        super().__init__(f"unknown job {job_id!r} on manager {manager!r}")
        self.job_id = job_id
        self.manager = manager


class NotFoundError(LwrError):
    """A route, manager or file that does not exist."""

    status = 404


class InvalidJobStateError(LwrError):
    """The job exists but its state forbids the request (e.g. an upload to a finished job)."""

    status = 409


class StagingError(LwrError):
    """Moving a file to or from a job failed; the message names the file and the cause."""

    status = 500


class SubmitError(LwrError):
    """Handing a job to its scheduler failed; keeps what the scheduler said for the operator."""

    status = 500

    def __init__(
        self,
        message: str,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        detail = message
        if argv:
            said = stderr.strip() or stdout.strip()
            detail += f" (command {' '.join(argv)!r} exited {returncode}: {said})"
        super().__init__(detail)
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class MessagingError(LwrError):
    """The message broker could not be reached or refused a message."""

    status = 500


class ServerUnavailableError(LwrError):
    """A client gave up on a server that stayed unreachable or kept answering 5xx."""

    status = 503


class PayloadTooLargeError(LwrError):
    """An upload is larger than the server accepts (``max_upload_size``)."""

    status = 413
