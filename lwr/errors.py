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
    #: the request's bytes can no longer be trusted to frame the next one: close the connection
    close_connection: bool = False

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


class UserAuthError(AuthorizationError):
    """``user_auth`` refused the job: who submitted it could not be proven, or is not allowed.

    ``reason`` is a short stable code (``expired``, ``audience``, ``issuer``, ``signature``,
    ``user_not_allowed``…) a client or an operator can act on; the message says the same in words,
    starts with ``user_auth:`` wherever it ends up (an HTTP answer, a job's failure reason), and
    never contains the token itself.
    """

    status = 403

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(f"user_auth: {message}")
        self.reason = reason

    def to_dict(self) -> dict[str, object]:
        return {"error": self.message, "reason": self.reason}


class IdentityServiceError(LwrError):
    """A service ``user_auth`` depends on (Galaxy's token endpoint, the JWKS) failed to answer.

    Not the submitter's fault and not LWR's: 502, so it is told apart from a refusal (403) and
    from a bug (500). The message names the service by scheme, host and path only, because the
    token endpoint's query string carries a per-job secret.
    """

    status = 502

    def __init__(self, message: str) -> None:
        super().__init__(f"user_auth: {message}")


class ToolNotAllowedError(AuthorizationError):
    """The tool whitelist (``tool_config_files``) refuses a job; ``rule`` names the check."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"refused by tool whitelist rule {rule!r}: {message}")
        self.rule = rule


class InvalidRequestError(LwrError):
    """A parameter is missing or malformed, or a name or path is not acceptable."""

    status = 400


class NameTooLongError(InvalidRequestError):
    """A name component or a whole path is longer than the file system takes (ENAMETOOLONG)."""


class MalformedBodyError(InvalidRequestError):
    """The body breaks its own framing (a chunk size that is not hex): where it ends is unknown."""

    close_connection = True


class RequestTimeoutError(LwrError):
    """The request body did not arrive in time: a stalled read (the socket ``timeout``) or the
    whole body over its budget (``body_timeout`` + ``body_min_rate``); the connection is closed."""

    status = 408
    close_connection = True


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


class ProxyError(LwrError):
    """The operator's forward proxy refused a request (lwr.proxy): its answer, typed, so a
    webhook's delivery or a transfer records why instead of a stray status or a traceback.
    ``proxy_status`` is the proxy's HTTP status (None: it said nothing usable)."""

    status = 502

    def __init__(self, message: str, proxy_status: int | None = None) -> None:
        super().__init__(message)
        self.proxy_status = proxy_status


class ProxyAuthError(ProxyError):
    """The proxy answered 407: the configured credentials are missing or refused."""


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


class KillLedgerUnavailable(MessagingError):
    """A pool worker cannot declare or read its pool's kill ledger (lwr.pool.kill_ledger).

    It then takes no setup: one it took could be a job Galaxy already cancelled.
    """


class ServerUnavailableError(LwrError):
    """A client gave up on a server that stayed unreachable or kept answering 5xx."""

    status = 503


class PayloadTooLargeError(LwrError):
    """An upload is larger than the server accepts (``max_upload_size``)."""

    status = 413


class JobTimeoutError(LwrError):
    """A client stopped waiting for a job that had not finished within its time limit."""

    status = 504

    def __init__(self, job_id: str, timeout: float, last_status: object) -> None:
        super().__init__(
            f"job {job_id!r} not finished after {timeout:g}s (last status {last_status!r})"
        )
        self.job_id = job_id
        self.timeout = timeout


class QuotaExceededError(PayloadTooLargeError):
    """An upload over the caller's plan (lwr.service.plans), refused before it is stored.

    The answer names the limit, the size and a plan that would allow it, so a client (or the
    dashboard's upgrade link) can act on it without parsing the message.
    """

    def __init__(
        self, limit: str, limit_bytes: int, size: int, plan: str, allowed_by: str | None
    ) -> None:
        upgrade = f"; plan {allowed_by!r} allows it" if allowed_by else ""
        super().__init__(
            f"upload of {size} bytes exceeds {limit} ({limit_bytes} bytes) of plan {plan!r}"
            f"{upgrade}"
        )
        self.limit, self.limit_bytes, self.size = limit, limit_bytes, size
        self.plan, self.allowed_by = plan, allowed_by

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.message,
            "limit": self.limit,
            "limit_bytes": self.limit_bytes,
            "size": self.size,
            "plan": self.plan,
            "allowed_by": self.allowed_by,
        }


class UserExistsError(LwrError):
    """A service user of that name exists already (names are never reused, even revoked)."""

    status = 409


class ResultsArchivedError(LwrError):
    """A download of results that retention archived (lwr.service.retention).

    409, not 404 or 410: the results exist and come back when the owner's plan keeps them
    (an upgrade restores them); the body says so in fields a client or page can act on.
    """

    status = 409

    def __init__(self, name: str, plan: str, restoring: bool, upgrade_to: Sequence[str]) -> None:
        if restoring:
            hint = "they are being restored; try again shortly"
        elif upgrade_to:
            hint = f"upgrading to plan {upgrade_to[0]!r} restores them"
        else:
            hint = "no plan keeps them longer"
        super().__init__(
            f"the results of this job ({name!r}) were archived after plan {plan!r}'s retention "
            f"time; {hint}"
        )
        self.plan, self.restoring, self.upgrade_to = plan, restoring, list(upgrade_to)

    def to_dict(self) -> dict[str, object]:
        return {
            "error": self.message,
            "archived": True,
            "restoring": self.restoring,
            "plan": self.plan,
            "upgrade_to": self.upgrade_to,
        }


class UserRevokedError(LwrError):
    """The user is revoked already: the request is well formed, the user's state forbids it.

    409 rather than 400, so a client (and a fuzzer) can tell a repeated revoke from a bad name.
    """

    status = 409
