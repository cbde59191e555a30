"""``remote_transfer_tus``: outputs uploaded with the tus protocol, resumed after a broken link.

Galaxy serves tus for job files at ``/api/job_files/resumable_upload`` (in 26.1 through
``tuspyserver``; the path is the files endpoint's with ``jobs/<id>/files`` replaced, its query
kept). An output travels in two steps:

1. **tus 1.0.0 upload**: ``POST`` the endpoint with ``Upload-Length`` (creation) and get the
   upload's URL in ``Location``; ``PATCH`` the bytes there with ``Upload-Offset``. When a
   connection breaks, a ``HEAD`` asks the server how many bytes it kept and the upload goes on
   from there, so only what was lost travels again. An upload the server forgot (404/410) starts
   over.
2. **The job files POST**: ``POST <files endpoint>?path=…&file_type=…&job_key=…`` with the form
   body ``session_id=<last segment of the upload URL>``; Galaxy moves the finished upload to the
   output's path.

Inputs of this action are fetched like ``remote_transfer`` inputs (a plain GET), as Galaxy's
client expects.

Our own small client, not ``tuspy`` (which Galaxy's client uses): tuspy sets no network timeout
(a silent server would hang the job forever), does not retry the creation request, retries at a
fixed interval rather than with the staging retry policy, reads every chunk into memory and
brings ``requests``, ``aiohttp`` and ``tinydb`` into the server. This one shares the retry
policy, the error messages (tokens redacted) and the ``sendfile`` body path of
:mod:`lwr.staging.transfer`, in about a hundred lines of the standard library.
"""

from __future__ import annotations

import base64
import http.client
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from lwr.errors import StagingError
from lwr.staging import bodies
from lwr.staging.bodies import TransientError
from lwr.staging.movers import ClientFile, HttpMover
from lwr.staging.transfer import (
    MIB,
    Refused,
    RetryPolicy,
    check_status,
    connect,
    redact_url,
    with_retries,
)

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
#: bytes per PATCH: what a broken connection can cost at most, even with a server that keeps
#: nothing of an interrupted request
CHUNK = 16 * MIB


class TusMover(HttpMover):
    """``remote_transfer_tus``: GET inputs as ``remote_transfer`` does; tus-upload outputs."""

    action_type = "remote_transfer_tus"

    def send(self, source: Path, file: ClientFile) -> None:
        url = self._url(file)
        upload = upload_file(tus_endpoint(url), source, self.settings.policy)
        session_id = urlsplit(upload).path.rstrip("/").rsplit("/", 1)[-1]
        post_session(url, session_id, source, self.settings.policy)
        log.info("sent %s to %s by tus (upload %s)", source, redact_url(url), session_id)


def tus_endpoint(files_url: str) -> str:
    """Galaxy's tus endpoint for job files, derived from the job's files endpoint URL."""
    parts = urlsplit(files_url)
    path, found = re.subn(r"jobs/[^/]*/files", "job_files/resumable_upload", parts.path, count=1)
    if not found:
        raise StagingError(
            f"remote_transfer_tus: cannot find 'jobs/<id>/files' in the files endpoint "
            f"{redact_url(files_url)}"
        )
    return urlunsplit(parts._replace(path=path))


@dataclass
class _Upload:
    """What survives between attempts: where the upload lives and how much the server has."""

    location: str | None = None
    offset: int = 0
    sent: int = 0


def upload_file(
    endpoint: str,
    source: Path,
    policy: RetryPolicy,
    chunk: int = CHUNK,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Upload ``source`` to the tus ``endpoint``, resuming after failures; return its URL."""
    if not source.is_file():
        raise StagingError(f"cannot send {source}: it does not exist or is not a file")
    size = source.stat().st_size
    state = _Upload()

    def attempt() -> int:
        if state.location is None:
            state.location, state.offset = _create(endpoint, source.name, size, policy), 0
        else:  # a retry: ask the server what it kept
            state.offset = _offset(state.location, policy, state)
            log.info("tus upload of %s resumes at byte %d of %d", source, state.offset, size)
        while state.offset < size:
            state.offset = _patch(state, source, min(chunk, size - state.offset), policy)
        return size

    with_retries("tus upload to", endpoint, source, policy, sleep, attempt)
    assert state.location is not None
    log.info(
        "tus upload of %s complete: %d bytes written to the network for %d",
        source,
        state.sent,
        size,
    )
    return state.location


def post_session(url: str, session_id: str, source: Path, policy: RetryPolicy) -> None:
    """Tell the job files API that upload ``session_id`` is the output (a form field)."""
    body = urlencode({"session_id": session_id}).encode()

    def attempt() -> int:
        conn, path = connect(url, policy.timeout)
        try:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            check_status(response)
            response.read()
            return 0
        finally:
            conn.close()

    with_retries("POST", url, source, policy, time.sleep, attempt)


def _create(endpoint: str, name: str, size: int, policy: RetryPolicy) -> str:
    # Galaxy 26.1's tus server answers a resume's HEAD with 400 unless both are there
    metadata = ", ".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in (("filename", name), ("filetype", "application/octet-stream"))
    )
    headers = {"Upload-Length": str(size), "Upload-Metadata": metadata, "Content-Length": "0"}
    response = _request("POST", endpoint, headers, policy)
    location = response.getheader("Location")
    if not location:
        raise Refused(f"HTTP {response.status}: the tus server answered without a Location")
    return urljoin(endpoint, location)


def _offset(location: str, policy: RetryPolicy, state: _Upload) -> int:
    try:
        response = _request("HEAD", location, {}, policy)
    except Refused as exc:
        if str(exc).startswith(("HTTP 404", "HTTP 410")):  # the server forgot it: start over
            state.location = None
            raise TransientError(f"the tus upload is gone ({exc})") from None
        raise
    return _offset_header(response)


def _patch(state: _Upload, source: Path, count: int, policy: RetryPolicy) -> int:
    assert state.location is not None
    conn, path = connect(state.location, policy.timeout)
    try:
        conn.putrequest("PATCH", path)
        for key, value in (
            ("Tus-Resumable", TUS_VERSION),
            ("Upload-Offset", str(state.offset)),
            ("Content-Type", "application/offset+octet-stream"),
            ("Content-Length", str(count)),
        ):
            conn.putheader(key, value)
        conn.endheaders()
        assert conn.sock is not None
        with open(source, "rb") as handle:
            bodies.send_file(conn.sock, handle, count, MIB, _Counter(state), state.offset)
        response = conn.getresponse()
        if response.status == 409:  # our offset is not the server's: ask it again
            raise TransientError("HTTP 409: the tus server holds another offset")
        check_status(response)
        response.read()
        return _offset_header(response)
    finally:
        conn.close()


class _Counter:
    """Counts the body bytes that left (the test's and the log's measure of a resume)."""

    def __init__(self, state: _Upload) -> None:
        self.state = state

    def __call__(self, count: int) -> None:
        self.state.sent += count


def _request(
    method: str, url: str, headers: dict[str, str], policy: RetryPolicy
) -> http.client.HTTPResponse:
    conn, path = connect(url, policy.timeout)
    try:
        conn.request(method, path, headers={"Tus-Resumable": TUS_VERSION, **headers})
        response = conn.getresponse()
        check_status(response)
        response.read()
        return response
    finally:
        conn.close()


def _offset_header(response: http.client.HTTPResponse) -> int:
    value = response.getheader("Upload-Offset", "")
    if not value.isdigit():
        raise Refused(f"HTTP {response.status}: no valid Upload-Offset in the tus server's answer")
    return int(value)


__all__ = ["TusMover", "post_session", "tus_endpoint", "upload_file"]
